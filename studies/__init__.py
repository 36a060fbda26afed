"""Studies that train many runs and summarise them (see ``studies/reproduce_small.py``)."""
