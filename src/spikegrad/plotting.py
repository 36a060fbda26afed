"""Matplotlib figures shared by the analysis callbacks (sent to TensorBoard) and ``spikegrad report`` (PNGs).

Figures are built with :class:`matplotlib.figure.Figure` directly (no pyplot state, no GUI backend), so they
are safe to draw during training and in worker processes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

__all__ = ["accuracy_figure", "grouped_bars_figure", "layer_bars_figure", "potential_figure"]


def _short(name: str) -> str:
    """``backbone.3`` -> ``3`` for axis labels (the full names stay in the tags)."""
    return name.removeprefix("backbone.")


def layer_bars_figure(values: Mapping[str, float], mean: float | None, ylabel: str, title: str) -> Figure:
    """One bar per layer (in forward order) and an optional dashed line for the network mean."""
    fig = Figure(figsize=(max(4.0, 0.7 * len(values) + 2.0), 3.2), layout="constrained")
    ax = fig.add_subplot()
    names = list(values)
    ax.bar(range(len(names)), [values[n] for n in names], color="tab:blue")
    ax.set_xticks(range(len(names)), [_short(n) for n in names], rotation=30 if len(names) > 6 else 0)
    top = max([*values.values(), mean or 0.0])
    ax.set_ylim(0.0, 1.3 * top if top > 0 else 1.0)  # head room so the legend never covers a bar
    if mean is not None:
        ax.axhline(mean, color="tab:red", ls="--", lw=1, label=f"network mean {mean:.3f}")
        ax.legend(loc="upper right", fontsize=8)
    ax.set_xlabel("spiking layer")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    return fig


def potential_figure(
    histograms: Mapping[str, tuple[np.ndarray, np.ndarray]],
    windows: Mapping[str, float],
    title: str,
    pda_window: tuple[float, float] | None = None,
) -> Figure:
    """Per-layer density of ``u = h/θ`` with the threshold (u = 1), the surrogate window and, when the run uses
    potential distribution adjustment, its window ``pda_window`` (``None``: not drawn).

    ``histograms[name] = (bin_edges, counts)`` in units of θ (the edge bins also hold the values beyond them);
    ``windows[name]`` is the surrogate window's half-width in units of θ (``inf`` for none).
    """
    n = len(histograms)
    cols = min(n, 3)
    rows = -(-n // cols)
    # fixed margins instead of a layout engine: this figure is drawn during training
    width, height = 4.2 * cols, 2.9 * rows + 0.4
    fig = Figure(figsize=(width, height))
    fig.subplots_adjust(left=0.8 / width, right=1 - 0.15 / width, bottom=0.55 / height, top=1 - 0.75 / height,
                        wspace=0.35, hspace=0.6)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, (name, (edges, counts)) in zip(axes.flat, histograms.items(), strict=False):
        total = max(float(counts.sum()), 1.0)
        density = counts / total / np.diff(edges)
        ax.stairs(np.where(density > 0, density, np.nan), edges, fill=True, color="tab:gray", alpha=0.8)
        half = windows.get(name, float("inf"))
        lo_edge, hi_edge = float(edges[0]), float(edges[-1])
        if np.isfinite(half):
            ax.axvspan(max(1 - half, lo_edge), min(1 + half, hi_edge), color="tab:orange", alpha=0.25,
                       label="surrogate window")
        ax.axvline(1.0, color="tab:red", lw=1.5, label="threshold θ")
        label = _short(name)
        if pda_window is not None:
            for i, x in enumerate(pda_window):
                ax.axvline(x, color="tab:blue", ls=":", lw=1, label="PDA window" if i == 0 else None)
            inside = counts[(edges[:-1] >= pda_window[0]) & (edges[1:] <= pda_window[1])].sum() / total
            label += f"  ({inside:.0%} in the PDA window [{pda_window[0]:g}, {pda_window[1]:g}]θ)"
        ax.set_title(label, fontsize=9)
        ax.set_xlim(lo_edge, hi_edge)
        ax.set_xlabel("h / θ")
        ax.set_ylabel("density")
        ax.set_yscale("log")
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=7, loc="upper right")
    fig.suptitle(title)
    return fig


def accuracy_figure(curves: Mapping[str, Mapping[str, Sequence[float]]], title: str) -> Figure:
    """Accuracy per epoch of several runs: ``curves[run] = {"val/acc": [...], "train/acc": [...]}``.

    Validation is drawn solid, training dashed, one colour per run.
    """
    fig = Figure(figsize=(6.4, 4.0), layout="constrained")
    ax = fig.add_subplot()
    colours = [f"C{i % 10}" for i in range(len(curves))]
    for colour, (run, series) in zip(colours, curves.items(), strict=False):
        for tag, style in (("val/acc", "-"), ("train/acc", "--")):
            values = list(series.get(tag, []))
            if values:
                ax.plot(range(1, len(values) + 1), values, style, color=colour, marker="o", ms=3,
                        label=f"{run} {tag.split('/')[0]}")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    return fig


def grouped_bars_figure(values: Mapping[str, Mapping[str, float]], ylabel: str, title: str) -> Figure:
    """Per-layer bars of several runs side by side: ``values[run][layer]`` (runs without values are left out)."""
    values = {run: per_layer for run, per_layer in values.items() if per_layer}
    layers: list[str] = []
    for per_layer in values.values():
        layers += [name for name in per_layer if name not in layers]
    n_runs = max(len(values), 1)
    width = 0.8 / n_runs
    fig = Figure(figsize=(max(6.5, 0.9 * len(layers) * max(1.0, n_runs / 2) + 4.0), 3.6), layout="constrained")
    ax = fig.add_subplot()
    x = np.arange(len(layers))
    for i, (run, per_layer) in enumerate(values.items()):
        heights = [per_layer.get(name, np.nan) for name in layers]
        ax.bar(x - 0.4 + width * (i + 0.5), heights, width=width, label=run, color=f"C{i % 10}")
    ax.set_xticks(x, [_short(n) for n in layers], rotation=30 if len(layers) > 6 else 0)
    ax.set_xlabel("spiking layer")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig
