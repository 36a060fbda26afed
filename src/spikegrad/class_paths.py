"""One-line messages for the settings that configs give by ``class_path``: the parts of the classifier (backbone,
neuron, surrogate, decoder, loss) and the DataModule.

jsonargparse validates these settings (the class exists, is of the right kind, takes the options given) but says
so in its own words, e.g. ``Parser key "model.surrogate": ... Expected a dot import path string: relu``. The
parser of the ``spikegrad`` command rewrites those messages to name the setting and the valid choices::

    model.surrogate: unknown class 'relu'; valid choices: ATan, DSpike, Rectangle, Sigmoid, Triangle (or the
    import path of a Surrogate subclass)
    model.neuron: LIF has no option 'taux'; valid options: tau, decay_input, v_threshold, reset, ...

The messages are matched by pattern (``tests/test_cli_errors.py`` pins each one, so a change of jsonargparse's
wording fails there); any other message is passed on unchanged.
"""

from __future__ import annotations

import importlib
import inspect
import re
from typing import NoReturn

from jsonargparse import ArgumentParser

from spikegrad.data.base import SpikeDataModule
from spikegrad.decoding import Decoder
from spikegrad.errors import OneLineErrorParser
from spikegrad.help_text import PlainHelpFormatter
from spikegrad.losses import Loss
from spikegrad.models import Backbone
from spikegrad.neurons import SpikingNeuron
from spikegrad.surrogates import Surrogate

__all__ = ["BASES", "ClassPathErrorParser", "explain", "known_subclasses"]

BASES: dict[str, tuple[type, int]] = {
    "model.backbone": (Backbone, 3),  # the classifier gives input_shape, num_classes, neuron
    "model.neuron": (SpikingNeuron, 1),  # ... the surrogate
    "model.surrogate": (Surrogate, 0),
    "model.decoder": (Decoder, 1),  # ... time_steps
    "model.loss": (Loss, 0),
    "data": (SpikeDataModule, 0),
}
"""Setting -> (base class of its valid classes, leading positional arguments that spikegrad supplies)."""

_KEY = r'Parser key "(?P<key>[\w.]+)":'
_UNKNOWN = re.compile(_KEY + r".*?(?:Expected a dot import path string: (?P<name>[^\s;]+)"
                      r"|Import path (?P<path>[^\s;]+) does not correspond to a subclass of)", re.DOTALL)
_OPTION = re.compile(_KEY + r".*?Option '(?P<option>[^']+)' is not accepted\. Got value: "
                     r"Namespace\(class_path='(?P<class_path>[\w.]+)'", re.DOTALL)
_INSTANCE_OPTION = re.compile(_KEY + r".*?Problem with given class_path '(?P<class_path>[\w.]+)':.*?"
                              r"Option '(?P<option>[^']+)' is not accepted", re.DOTALL)


def known_subclasses(base: type) -> list[str]:
    """Names of the concrete subclasses of ``base`` imported so far (spikegrad's own, and any the user imported)."""
    found, todo = {}, list(base.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if not inspect.isabstract(cls) and not cls.__name__.startswith("_") and "<locals>" not in cls.__qualname__:
            found.setdefault(cls.__name__, cls)
    return sorted(found, key=str.lower)


def _options(class_path: str, skip: int) -> list[str]:
    module_name, _, name = class_path.rpartition(".")
    cls = getattr(importlib.import_module(module_name), name)
    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(cls, "options", skip={skip} if skip else None, fail_untyped=False)
    return list(vars(parser.get_defaults()["options"]))


def explain(message: str) -> str:
    """``message`` in the words of spikegrad's settings when it is about a class path; else unchanged."""
    found = _UNKNOWN.search(message)
    if found and found["key"] in BASES:
        key, (base, _) = found["key"], BASES[found["key"]]
        choices = ", ".join(known_subclasses(base))
        what = f"unknown class {found['name']!r}" if found["name"] else f"{found['path']} is not a {base.__name__}"
        return f"{key}: {what}; valid choices: {choices} (or the import path of a {base.__name__} subclass)"
    found = _OPTION.search(message) or _INSTANCE_OPTION.search(message)
    if found and found["key"] in BASES:
        key, (_, skip) = found["key"], BASES[found["key"]]
        try:
            options = ", ".join(_options(found["class_path"], skip))
        except Exception:  # the message stays useful without the list
            return message
        name = found["class_path"].rpartition(".")[2]
        return f"{key}: {name} has no option {found['option']!r}; valid options: {options}"
    return message


class ClassPathErrorParser(OneLineErrorParser):
    """The ``spikegrad`` parser: one-line errors, with class-path settings explained by :func:`explain`, and
    help text without reStructuredText markup (:mod:`spikegrad.help_text`)."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", PlainHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        super().error(explain(message), ex)
