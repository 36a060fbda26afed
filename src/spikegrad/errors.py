"""Errors a user can cause, reported as one line and an exit code instead of a traceback.

* :class:`UsageError` — an invalid setting found before any work starts (exit code 2, like argparse).
* :class:`RunFailed` — a run that stopped for a reason the user must act on, e.g. a non-finite loss (exit code 1).

:class:`OneLineErrorParser` makes jsonargparse's own errors (an unknown key, a value of the wrong type) one line
too: by default jsonargparse prints the whole usage (about a hundred lines) before the message, and a value
that fails inside a ``Union`` (every optional setting) buries its reason in the list of the union's types;
:func:`distill` keeps the reason. :class:`ErrorLog` writes the full traceback of a failed run into the run
folder (``error.log``), so that the console line can stay one line.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import sys
import traceback
from typing import NoReturn

from lightning.pytorch.callbacks import Callback
from lightning.pytorch.cli import LightningArgumentParser
from lightning.pytorch.utilities.exceptions import SIGTERMException

USAGE_EXIT_CODE = 2
RUN_FAILED_EXIT_CODE = 1
ERROR_LOG_NAME = "error.log"


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


_KEY = re.compile(r'^Parser key "([^"]+)":\s*')
_DENIED = re.compile(r"Importing '([^']+)' is not allowed")
_EXPECTED_TYPE = re.compile(r"^Expected a <class '([\w.]+)'>$")
_CLASS_PROBLEM = re.compile(r"^Problem with given class_path '([^']+)':\s*")


def _union_reasons(message: str) -> list[str]:
    """The items below ``Errors:`` of a jsonargparse union failure, each joined into one string."""
    found = re.search(r"Errors:\n(.*?)(?:\n\s*Given value type:|\Z)", message, re.S)
    if not found:
        return []
    lines = [line for line in found.group(1).splitlines() if line.strip()]
    indents = [len(line) - len(line.lstrip()) for line in lines if line.lstrip().startswith("- ")]
    if not indents:
        return []
    items: list[list[str]] = []
    for line in lines:
        if line.lstrip().startswith("- ") and len(line) - len(line.lstrip()) == min(indents):
            items.append([line.strip()[2:]])
        elif items:
            items[-1].append(line.strip())
    return [" ".join(item) for item in items]


def distill(message: str) -> str:
    """One line with the reason of a (possibly nested) jsonargparse/instantiation error and the setting's name."""
    from spikegrad.trust import untrusted_message  # here: trust imports this module

    text = str(message)
    key_match = _KEY.match(text)
    key = key_match.group(1) if key_match else None
    denied = _DENIED.search(text)
    if denied:
        given = re.search(r"class_path='([^']+)'", text)
        return untrusted_message(given.group(1) if given else denied.group(1), key, resolved=denied.group(1))
    reasons = _union_reasons(text)
    if reasons:
        types = [m.group(1) for m in map(_EXPECTED_TYPE.match, reasons) if m]
        kept = list(dict.fromkeys(
            _CLASS_PROBLEM.sub(lambda m: f"{m.group(1)}: ", reason) for reason in reasons
            if not _EXPECTED_TYPE.match(reason)
        ))
        if kept:
            body = "; ".join(kept)
        else:
            given = re.search(r"Given value: (.*)", text)
            names = " or ".join("null" if t == "NoneType" else t for t in types)
            body = f"expected {names}" + (f", got {given.group(1).strip()!r}" if given else "")
        return f"{key}: {body}" if key else body
    return one_line(text)


def report(error: BaseException, prog: str = "spikegrad") -> int:
    """Writes ``prog: error: <one line>`` to stderr and returns the exit code for ``error``.

    When :class:`ErrorLog` saved the traceback in the run folder, the line ends with where.
    """
    saved = getattr(error, "traceback_file", None)
    where = f" (traceback: {saved})" if saved else ""
    sys.stderr.write(f"{prog}: error: {distill(str(error))}{where}\n")
    return RUN_FAILED_EXIT_CODE if isinstance(error, RunFailed) else USAGE_EXIT_CODE


class OneLineErrorParser(LightningArgumentParser):
    """LightningArgumentParser whose parse errors are one line with a pointer to ``--help`` (exit code 2)."""

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        if not self.exit_on_error:
            super().error(message, ex)
        parser = getattr(ex, "subcommand_parser", None) or self
        prog = parser.prog.replace(" [options]", "")
        sys.stderr.write(f"{prog}: error: {distill(message)} (valid settings: {prog} --help)\n")
        sys.exit(USAGE_EXIT_CODE)


class ErrorLog(Callback):
    """On an error during fit/validate/test/predict, appends the full traceback to ``<run folder>/error.log``.

    Only when the run folder exists (an error before it is created leaves nothing behind); interruptions
    (Ctrl-C, SIGTERM) are not errors. The exception gets a ``traceback_file`` attribute with the path, which
    :func:`report` prints after the one-line message.
    """

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        if isinstance(exception, (KeyboardInterrupt, SIGTERMException)) or not trainer.is_global_zero:
            return
        log_dir = getattr(trainer.logger, "log_dir", None) if trainer.logger is not None else None
        if not log_dir or not os.path.isdir(log_dir):
            return
        path = os.path.join(log_dir, ERROR_LOG_NAME)
        stamp = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        with open(path, "a") as f:
            f.write(f"--- {stamp} {type(exception).__name__}\n")
            f.write("".join(traceback.format_exception(type(exception), exception, exception.__traceback__)))
        exception.traceback_file = path
