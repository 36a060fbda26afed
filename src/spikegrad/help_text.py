"""``--help`` in plain text: the docstrings' reStructuredText markup (Sphinx roles such as ``:class:`~a.B```,
inline literals in double backquotes) as a terminal user reads it.

jsonargparse takes each option's description from the ``Args:`` section of its class's docstring (with
docstring-parser); those docstrings are also the API documentation, so they keep their markup and the help
formatter of the ``spikegrad`` parser (:class:`PlainHelpFormatter`) strips it before the text is wrapped.
"""

from __future__ import annotations

import re

from jsonargparse import DefaultHelpFormatter

__all__ = ["PlainHelpFormatter", "plain"]

# :class:`~spikegrad.neurons.SpikingNeuron` -> SpikingNeuron; :mod:`spikegrad.kernels` -> spikegrad.kernels;
# :doc:`the guide <guide>` -> the guide
_ROLE = re.compile(r":[a-z]+(?::[a-z]+)?:`(~?)([^`<]*?)(?:\s*<[^>]*>)?`")
_LITERAL = re.compile(r"``(.+?)``", re.S)


def _role(match: re.Match) -> str:
    text = match.group(2).strip()
    return text.rsplit(".", 1)[-1] if match.group(1) else text


def plain(text: str | None) -> str | None:
    """``text`` without Sphinx roles and inline-literal backquotes."""
    if not text:
        return text
    return _LITERAL.sub(r"\1", _ROLE.sub(_role, text))


class PlainHelpFormatter(DefaultHelpFormatter):
    """jsonargparse's help formatter on :func:`plain` descriptions."""

    def _get_help_string(self, action) -> str | None:
        return plain(super()._get_help_string(action))

    def add_text(self, text: str | None) -> None:
        super().add_text(plain(text) if isinstance(text, str) else text)

    def start_section(self, heading: str | None) -> None:
        super().start_section(plain(heading) if isinstance(heading, str) else heading)
