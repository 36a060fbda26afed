"""The order in which TensorBoard shows a run's curves: a custom-scalars layout, training metrics first.

TensorBoard's Scalars tab sorts tag groups by name, so ``energy`` and ``firing_rate`` would come before
``train`` and ``val``. The layout written here (TensorBoard's CUSTOM SCALARS tab) pins the order: loss and
accuracy, then the spiking activity (firing rate and gradient sparsity per layer, one chart each with a line
per layer), the potentials, the energy estimate and the methods' own state. Charts match tags by regular
expression, so they cover every layer of any backbone.
"""

from __future__ import annotations

__all__ = ["LAYOUT", "write_layout"]

LAYOUT: dict[str, dict[str, list]] = {
    "1 training": {
        "loss": ["Multiline", [r"^train/loss_epoch$", r"^val/loss$", r"^test/loss$"]],
        "accuracy": ["Multiline", [r"^train/acc$", r"^val/acc$", r"^val/acc_best$", r"^test/acc$"]],
    },
    "2 spiking activity": {
        "firing rate per layer (spikes per neuron per step)": ["Multiline", [r"^firing_rate/"]],
        "zeros of ∂s/∂h per layer": ["Multiline", [r"^grad_sparsity/"]],
        "zeros of ∂L/∂h per layer": ["Multiline", [r"^grad_sparsity_h/"]],
    },
    "3 potential": {
        "mean h/θ per layer": ["Multiline", [r"^potential/.*/mean_over_theta$"]],
        "fraction in the surrogate window": ["Multiline", [r"^potential/.*/frac_in_window$"]],
        "PDA penalty": ["Multiline", [r"^train/pda", r"^pda/"]],
    },
    "4 energy": {
        "SNN energy per sample (µJ)": ["Multiline", [r"^energy/snn_uJ$"]],
        "SNN / ANN energy": ["Multiline", [r"^energy/snn_to_ann$"]],
        "synaptic operations per layer": ["Multiline", [r"^energy/sops/"]],
    },
    "5 method state": {
        "learned neuron quantities": ["Multiline", [r"^neuron/"]],
        "TWO weights": ["Multiline", [r"^method/two_weights/"]],
        "PSG α per layer": ["Multiline", [r"^psg/alpha/"]],
        "Dspike temperature and cosines": ["Multiline", [r"^dspike/"]],
    },
}


# the callbacks (by class name) whose tags a category or chart shows; without them it is left out
NEEDS = {
    "2 spiking activity": ("FiringRateMonitor", "GradientSparsityMonitor"),
    "3 potential": ("PotentialMonitor",),
    "4 energy": ("EnergyMonitor",),
    "5 method state": ("MethodStateMonitor", "ParametricSurrogate", "DspikeTemperatureSearch"),
    "PDA penalty": ("pda",),
}


def layout_for(present: set[str]) -> dict[str, dict[str, list]]:
    """:data:`LAYOUT` without the categories and charts whose callbacks are not in ``present`` (class names, and
    ``pda`` when the run uses potential distribution adjustment): no empty charts."""
    layout = {}
    for category, charts in LAYOUT.items():
        if category in NEEDS and not present & set(NEEDS[category]):
            continue
        kept = {name: chart for name, chart in charts.items() if name not in NEEDS or present & set(NEEDS[name])}
        if kept:
            layout[category] = kept
    return layout


def write_layout(writer, present: set[str]) -> None:
    """Writes the layout for a run with the callbacks ``present`` with a ``SummaryWriter``."""
    writer.add_custom_scalars(layout_for(present))
