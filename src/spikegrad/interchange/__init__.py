"""Models that leave spikegrad and come back: NIR export and import, and the NeuroBench cross-check.

* :mod:`~spikegrad.interchange.discretisation`: our per-step neurons as NIR's continuous-time ``LIF``/``IF``
  (forward Euler at step ``dt``) and back;
* :mod:`~spikegrad.interchange.to_nir`: a trained classifier's backbone as a NIR graph (``spikegrad export``);
* :class:`~spikegrad.models.nir_graph.NIRBackbone` (a backbone, in ``spikegrad.models``): a NIR graph run on our
  layers;
* :mod:`~spikegrad.interchange.command`: the ``spikegrad export`` command and the run's settings from a checkpoint;
* :mod:`~spikegrad.interchange.neurobench`: NeuroBench's metrics next to ours (``spikegrad neurobench``).

docs/export.md has the mapping table, what is lost and the measured agreement with snnTorch and Norse. The names
below are loaded on first use: ``spikegrad.models`` imports the discretisation from here, and this package's export
side imports ``spikegrad.models``.
"""

from __future__ import annotations

import importlib

__all__ = ["Export", "NIRBackbone", "export_backbone", "export_classifier"]

_HOMES = {
    "Export": "spikegrad.interchange.to_nir",
    "export_backbone": "spikegrad.interchange.to_nir",
    "export_classifier": "spikegrad.interchange.to_nir",
    "NIRBackbone": "spikegrad.models.nir_graph",
}


def __getattr__(name: str):
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'spikegrad.interchange' has no attribute {name!r}")
