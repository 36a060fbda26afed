"""Models that leave spikegrad and come back: NIR export and import, and the NeuroBench cross-check.

* :mod:`~spikegrad.interchange.discretisation`: our per-step neurons as NIR's continuous-time ``LIF``/``IF``
  (forward Euler at step ``dt``) and back;
* :mod:`~spikegrad.interchange.to_nir`: a trained classifier's backbone as a NIR graph (``spikegrad export``);
* :mod:`~spikegrad.interchange.from_nir`: a NIR graph as a backbone, :class:`NIRBackbone`;
* :mod:`~spikegrad.interchange.command`: the ``spikegrad export`` command and the run's settings from a checkpoint;
* :mod:`~spikegrad.interchange.neurobench`: NeuroBench's metrics next to ours (``spikegrad neurobench``).

docs/export.md has the mapping table, what is lost and the measured agreement with snnTorch and Norse.
"""

from spikegrad.interchange.from_nir import NIRBackbone, ScaledInputNeuron
from spikegrad.interchange.to_nir import Export, export_backbone, export_classifier

__all__ = ["Export", "NIRBackbone", "ScaledInputNeuron", "export_backbone", "export_classifier"]
