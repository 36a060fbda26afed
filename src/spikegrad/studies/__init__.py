"""Small studies that reproduce a claim of a paper end to end (data, sweep, table)."""
