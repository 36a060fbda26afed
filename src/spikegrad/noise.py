"""Known-harmless console noise, filtered by its exact text before the libraries that make it are imported.

* Lightning's "💡 Tip: ... litlogger" line, an advert printed at every run (an info log record of
  ``lightning.pytorch.utilities.rank_zero``, lightning 2.6);
* torch's ``FutureWarning`` "`isinstance(treespec, LeafSpec)` is deprecated", raised by Lightning's own
  ``_pytree`` helper at every fit and test (torch 2.14, lightning 2.6), and "`torch.utils._pytree.
  _register_pytree_node` is deprecated", raised when a dependency registers its types with the old name: both
  inside libraries, nothing a user can change.

Every other warning and log line is shown as before.
"""

from __future__ import annotations

import logging
import re
import warnings

__all__ = ["quiet_known_noise"]

ADVERTS = (("lightning.pytorch.utilities.rank_zero", r"^💡 Tip: .*litlogger"),)
KNOWN_WARNINGS = (
    (FutureWarning, r"`isinstance\(treespec, LeafSpec\)` is deprecated"),
    (FutureWarning, r"`torch\.utils\._pytree\._register_pytree_node` is deprecated"),
)


class _DropMatching(logging.Filter):
    def __init__(self, pattern: str) -> None:
        super().__init__()
        self.pattern = re.compile(pattern, re.S)

    def filter(self, record: logging.LogRecord) -> bool:
        return not self.pattern.search(record.getMessage())


def quiet_known_noise() -> None:
    """Installs the filters (each once)."""
    for category, pattern in KNOWN_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern, category=category)
    for name, pattern in ADVERTS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropMatching) and f.pattern.pattern == pattern for f in logger.filters):
            logger.addFilter(_DropMatching(pattern))
