"""Errors a user can cause, reported as one line and an exit code instead of a traceback.

* :class:`UsageError` — an invalid setting found before any work starts (exit code 2, like argparse).
* :class:`RunFailed` — a run that stopped for a reason the user must act on, e.g. a non-finite loss (exit code 1).

:class:`OneLineErrorParser` makes jsonargparse's own errors (an unknown key, a value of the wrong type) one line
too: by default jsonargparse prints the whole usage (about a hundred lines) before the message.
"""

from __future__ import annotations

import sys
from typing import NoReturn

from lightning.pytorch.cli import LightningArgumentParser

USAGE_EXIT_CODE = 2
RUN_FAILED_EXIT_CODE = 1


class UsageError(Exception):
    """An invalid setting: the message names the setting and the valid values."""


class RunFailed(Exception):
    """A run stopped on purpose with a message for the user (e.g. a non-finite loss)."""


def one_line(message: str) -> str:
    """Collapses a multi-line message (jsonargparse nests the reasons of a failed value) into one line."""
    parts = [part.strip(" -") for part in str(message).splitlines()]
    text = ""
    for part in filter(None, parts):
        text += part if not text else (" " if text.endswith(":") else "; ") + part
    return text


def report(error: BaseException, prog: str = "spikegrad") -> int:
    """Writes ``prog: error: <one line>`` to stderr and returns the exit code for ``error``."""
    sys.stderr.write(f"{prog}: error: {one_line(str(error))}\n")
    return RUN_FAILED_EXIT_CODE if isinstance(error, RunFailed) else USAGE_EXIT_CODE


class OneLineErrorParser(LightningArgumentParser):
    """LightningArgumentParser whose parse errors are one line with a pointer to ``--help`` (exit code 2)."""

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        if not self.exit_on_error:
            super().error(message, ex)
        parser = getattr(ex, "subcommand_parser", None) or self
        prog = parser.prog.replace(" [options]", "")
        sys.stderr.write(f"{prog}: error: {one_line(message)} (valid settings: {prog} --help)\n")
        sys.exit(USAGE_EXIT_CODE)
