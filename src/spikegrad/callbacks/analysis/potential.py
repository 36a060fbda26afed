"""Distribution of the pre-spike membrane potential ``h`` of every spiking layer, relative to the threshold.

On each sampled training batch, with ``u = h/θ`` over all ``T·B·N_l`` entries of layer ``l``:

* ``potential/<layer>``: TensorBoard histogram of ``u`` on fixed bins over ``value_range`` (values outside
  are counted in the first/last bin, so the counts always add up to the number of entries);
* ``potential/<layer>/mean_over_theta`` and ``std_over_theta``: mean and (population) standard deviation of u;
* ``potential/<layer>/frac_below_0``: ``P(u < 0)``;
* ``potential/<layer>/frac_in_window``: ``P(|h - θ| <= w)``, the share of entries whose surrogate derivative
  is "active". ``w`` is the surrogate's half-width of support for compact shapes (rectangle ``a/2``, triangle
  ``1/α``, Dspike ``θ/2``); for shapes with full support (sigmoid, atan) it is the half-width at half maximum
  of ``g`` (atan: ``2/(πα)``, sigmoid: ``ln(3 + 2√2)/α ≈ 1.763/α``);
* ``potential/<layer>/frac_above_2theta``: ``P(u > 2)``.

The window ``[0, 2θ]`` is the default representable window of the potential distribution adjustment (PDA,
reconstruction of Wang, Cheng & Lim, arXiv 2304.13289, see docs/methods.md): mass below 0 and above 2θ is what it
penalises. At training epoch ends (see ``figure_every_n_epochs``) one figure per layer,
``potential/distribution/<layer>``, shows its density of u over the epoch's sampled batches with the threshold,
the surrogate window and, when the run uses PDA (``model.pda.weight > 0``), the PDA window.
Under DDP all counts and sums are summed over processes (min/max by maximum, torchmetrics), so the statistics
are global.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from spikegrad.callbacks.analysis.sampling import (
    SampledBatchCallback,
    check_figure_every,
    epoch_end_step,
    figure_due,
    log_figure,
    log_scalars,
    reduced,
    tell_once,
    tensorboard_writers,
)
from spikegrad.plotting import potential_figure
from spikegrad.surrogates import Surrogate

__all__ = ["PotentialMonitor", "surrogate_window"]

# columns of the per-layer sums before the histogram counts
_SUMS = ("count", "sum", "sum_sq", "below_0", "in_window", "above_2")


def surrogate_window(surrogate: Surrogate) -> float:
    """Half-width ``w`` of the surrogate's active window in units of ``h - θ`` (see the module docstring).

    Compact shapes: :meth:`Surrogate.support`. Full-support shapes: the ``x > 0`` with ``g(x) = g(0)/2``,
    found by bisection on :meth:`Surrogate.grad`.
    """
    support = surrogate.support()
    if math.isfinite(support):
        return float(support)

    def g(x: float) -> float:
        return float(surrogate.grad(torch.tensor([x], dtype=torch.float64)))

    half = g(0.0) / 2
    lo, hi = 0.0, 1.0
    while g(hi) > half:
        lo, hi = hi, 2 * hi
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if g(mid) > half else (lo, mid)
    return (lo + hi) / 2


class PotentialMonitor(SampledBatchCallback):
    """Histograms and threshold-relative statistics of the pre-spike potential ``h`` per spiking layer.

    Args:
        every_n_steps: sampling period in optimizer steps.
        bins: number of histogram bins.
        value_range: ``(lo, hi)`` of the histogram in units of θ.
        figure_every_n_epochs: draw the distribution figure every this many epochs and at the last (0: never).
    """

    def __init__(
        self,
        every_n_steps: int = 50,
        bins: int = 60,
        value_range: tuple[float, float] = (-2.0, 4.0),
        figure_every_n_epochs: int = 1,
    ) -> None:
        super().__init__(every_n_steps)
        lo, hi = (float(v) for v in value_range)
        if not lo < 1.0 < hi:
            raise ValueError(f"PotentialMonitor value_range must satisfy lo < 1 < hi (units of θ), got {value_range!r}")
        if not isinstance(bins, int) or bins < 2:
            raise ValueError(f"PotentialMonitor bins must be an integer >= 2, got {bins!r}")
        self.bins = bins
        self.value_range = (lo, hi)
        self.figure_every_n_epochs = check_figure_every(type(self).__name__, figure_every_n_epochs)
        self.edges = np.linspace(lo, hi, bins + 1)
        self._epoch_hist: dict[str, np.ndarray] = {}
        self._windows: dict[str, float] = {}

    def _layer_sums(self, layer) -> tuple[torch.Tensor, torch.Tensor]:
        theta = layer.threshold_value()
        h = layer.recorded["potential"]
        u = (h / theta).flatten().float()
        window = surrogate_window(layer.surrogate) / theta
        lo, hi = self.value_range
        sums = torch.stack(
            [
                u.new_tensor(u.numel(), dtype=torch.float64),
                u.sum(dtype=torch.float64),
                u.double().square().sum(),
                (u < 0).sum().double(),
                ((u - 1).abs() <= window).sum().double(),
                (u > 2).sum().double(),
            ]
        )
        hist = torch.histc(u.clamp(lo, hi), bins=self.bins, min=lo, max=hi).double()
        extremes = torch.stack([u.max(), -u.min()]).double()
        return torch.cat([sums, hist]), extremes

    def on_sample(self, trainer, pl_module, layers, step) -> None:
        names = [name for name, layer in layers.items() if "potential" in layer.recorded]
        if not names:
            return
        rows, extremes = zip(*(self._layer_sums(layers[n]) for n in names), strict=True)
        sums, extremes = reduced(pl_module, torch.stack(rows), torch.stack(extremes))
        sums, extremes = sums.numpy(), extremes.numpy()
        metrics: dict[str, float] = {}
        writers = tensorboard_writers(trainer)
        tell_once(self, "the histograms potential/<layer>", trainer)
        for name, row, (u_max, neg_u_min) in zip(names, sums, extremes, strict=True):
            count, total, total_sq, below, inside, above = row[: len(_SUMS)]
            hist = row[len(_SUMS):]
            mean = total / count
            metrics[f"potential/{name}/mean_over_theta"] = float(mean)
            metrics[f"potential/{name}/std_over_theta"] = float(math.sqrt(max(total_sq / count - mean**2, 0.0)))
            metrics[f"potential/{name}/frac_below_0"] = float(below / count)
            metrics[f"potential/{name}/frac_in_window"] = float(inside / count)
            metrics[f"potential/{name}/frac_above_2theta"] = float(above / count)
            self._epoch_hist[name] = self._epoch_hist.get(name, 0) + hist
            self._windows[name] = surrogate_window(layers[name].surrogate) / layers[name].threshold_value()
            for writer in writers:
                writer.add_histogram_raw(
                    f"potential/{name}", min=float(-neg_u_min), max=float(u_max), num=int(count), sum=float(total),
                    sum_squares=float(total_sq), bucket_limits=self.edges[1:], bucket_counts=hist,
                    global_step=step,
                )
        log_scalars(trainer, metrics, step)

    def on_sampled_epoch_end(self, trainer, pl_module) -> None:
        hists, self._epoch_hist = self._epoch_hist, {}
        if not hists or not figure_due(trainer, self.figure_every_n_epochs):
            return
        pda = getattr(pl_module, "pda", None)
        pda_window = (float(pda.lo), float(pda.hi)) if pda is not None and pda.weight > 0 else None
        if not trainer.is_global_zero or not trainer.loggers:
            return
        # one figure per layer: readable at the Images tab's card size, and in depth order
        for name, counts in hists.items():
            figure = potential_figure(
                {name: (self.edges, counts)}, self._windows,
                f"Pre-spike potential h/θ of {name}, epoch {trainer.current_epoch}", pda_window,
            )
            log_figure(trainer, f"potential/distribution/{name}", figure, epoch_end_step(trainer))
