"""Which modules a config may name in ``class_path``: a config file is code.

jsonargparse imports whatever a ``class_path`` (or a callable such as an optimizer) names and calls it with
``init_args``: ``class_path: os.system`` with ``init_args: {command: ...}`` runs a shell command. The
``spikegrad`` command therefore only imports from trusted module prefixes: :data:`TRUSTED_MODULES` and those
listed, comma-separated, in the environment variable ``SPIKEGRAD_TRUSTED_MODULES`` (e.g.
``SPIKEGRAD_TRUSTED_MODULES=torchvision,mylab.callbacks``). The list cannot be extended from a config file or
the command line: a setting that allows itself would allow anything. It is enforced with jsonargparse's
import-path policy (``set_parsing_settings(import_path_denylist=["*"], import_path_allowlist=...)``,
jsonargparse >= 4.52), which refuses a path before importing it, also when it is reached through a trusted
module (``torch.os.system`` is ``posix.system``). The policy is global to the process.
"""

from __future__ import annotations

import os

from jsonargparse import set_parsing_settings

from spikegrad.errors import UsageError

TRUSTED_MODULES = ("torch", "lightning", "torchmetrics", "spikegrad")
TRUSTED_MODULES_ENV = "SPIKEGRAD_TRUSTED_MODULES"

_allowed: set[str] = set()  # the prefixes this process allowed so far (to deny them again when dropped)


def trusted_modules(environ: dict[str, str] | None = None) -> list[str]:
    """:data:`TRUSTED_MODULES` and the prefixes of ``SPIKEGRAD_TRUSTED_MODULES``; a malformed entry is a
    :class:`UsageError`."""
    raw = (os.environ if environ is None else environ).get(TRUSTED_MODULES_ENV, "")
    extra = [entry.strip() for entry in raw.split(",") if entry.strip()]
    for entry in extra:
        if not all(part.isidentifier() for part in entry.split(".")) or entry.split(".")[0] == "jsonargparse":
            raise UsageError(
                f"{TRUSTED_MODULES_ENV}: {entry!r} is not a module prefix that can be trusted; valid values: "
                f"comma-separated dotted module names such as torchvision,mylab.callbacks"
            )
    return [*TRUSTED_MODULES, *dict.fromkeys(extra)]


def enforce_trusted_modules(environ: dict[str, str] | None = None) -> list[str]:
    """Makes jsonargparse refuse every import path outside :func:`trusted_modules`; returns that list."""
    trusted = trusted_modules(environ)
    dropped = sorted(_allowed - set(trusted))
    set_parsing_settings(import_path_denylist=["*", *dropped], import_path_allowlist=trusted)
    _allowed.clear()
    _allowed.update(trusted)
    return trusted


def untrusted_message(path: str, setting: str | None = None, resolved: str | None = None) -> str:
    """The one-line error for a ``class_path`` (which is ``resolved`` where it imports from elsewhere) outside the
    trusted modules."""
    where = f"{setting}: " if setting else ""
    resolved = resolved or path
    module = resolved.split(".")[0]
    trusted = trusted_modules()
    named = repr(path) + (f" (that is {resolved!r})" if resolved != path else "")
    return (
        f"{where}class_path {named} is not in a trusted module ({', '.join(trusted)}); a config "
        f"is code: if you trust this one, allow the module with the environment variable "
        f"{TRUSTED_MODULES_ENV}={module}"
    )
