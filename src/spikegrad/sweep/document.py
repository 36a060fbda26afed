"""Fills the sweep blocks of a markdown document from the sweeps' summaries.

A block ``<!-- BEGIN sweep:NAME -->`` … ``<!-- END sweep:NAME -->`` gets the table and figure of
``<log_root>/NAME/summary/summary.md`` (what ``spikegrad sweep`` wrote); text outside the markers is kept, a
block without a summary is left as it is. ``python -m spikegrad.sweep.document DOC --log_root DIR``
(``make reproduce-small`` runs it on docs/reproduction_small.md).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil

__all__ = ["fill_blocks"]

BLOCK = re.compile(r"(<!-- BEGIN sweep:([\w.-]+) -->\n)(.*?)(<!-- END sweep:\2 -->)", re.S)


def _summary_block(summary_dir: str, doc_dir: str, name: str) -> str:
    """The summary's text with its figure copied next to the document (``figures/sweeps/<name>.png``)."""
    with open(os.path.join(summary_dir, "summary.md")) as f:
        lines = f.read().splitlines()[2:]  # without the title
    figure = os.path.join(doc_dir, "figures", "sweeps", f"{name}.png")
    os.makedirs(os.path.dirname(figure), exist_ok=True)
    shutil.copyfile(os.path.join(summary_dir, "summary.png"), figure)
    text = "\n".join(lines).replace("](summary.png)", f"](figures/sweeps/{name}.png)")
    return text.strip() + "\n"


def fill_blocks(doc: str, log_root: str) -> list[str]:
    """Rewrites the sweep blocks of ``doc`` that have a summary under ``log_root``; returns their names."""
    with open(doc) as f:
        text = f.read()
    filled: list[str] = []

    def replace(match: re.Match) -> str:
        name = match.group(2)
        summary_dir = os.path.join(log_root, name, "summary")
        if not os.path.isfile(os.path.join(summary_dir, "summary.md")):
            return match.group(0)
        filled.append(name)
        return match.group(1) + _summary_block(summary_dir, os.path.dirname(doc), name) + match.group(4)

    text = BLOCK.sub(replace, text)
    with open(doc, "w") as f:
        f.write(text)
    return filled


def main(args: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m spikegrad.sweep.document", description=__doc__.splitlines()[0])
    parser.add_argument("doc", help="the markdown document")
    parser.add_argument("--log_root", default="logs", help="where the sweeps' folders are")
    options = parser.parse_args(args)
    filled = fill_blocks(options.doc, options.log_root)
    print(f"{options.doc}: filled {', '.join(filled) if filled else 'no'} sweep block(s)")


if __name__ == "__main__":
    main()
