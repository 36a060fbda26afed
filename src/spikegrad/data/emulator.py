"""An event-camera emulator: images moved along N-MNIST-like saccades -> DVS events.

Model of a DVS pixel (Lichtsteiner, Posch, Delbruck, IEEE JSSC 2008): each pixel compares its log
intensity ``L = log(I + eps)`` with the value it had at its own last event, ``L_ref``; when
``|L(t) - L_ref| > C`` (contrast threshold C) it emits an event ``(x, y, t, p)`` with ``p = 1`` for an
increase (ON) and ``p = 0`` for a decrease (OFF) and sets ``L_ref = L(t)``. At t = 0 every ``L_ref`` is the
first view (the sensor is adapted), so the first events come from motion.

Motion (Orchard et al., "Converting static image datasets to spiking neuromorphic datasets using
saccades", Front. Neurosci. 2015, as undone by N-MNIST's stabilisation code): three straight saccades of
equal duration, displacing the image by (+3.5, +7), (+3.5, -7), then (-7, 0) pixels (x, y), a triangle
back to the start.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

EVENT_DTYPE = np.dtype([("x", int), ("y", int), ("t", int), ("p", int)])  # tonic's N-MNIST event dtype
SACCADES = ((3.5, 7.0), (3.5, -7.0), (-7.0, 0.0))


def saccade_offsets(steps_per_saccade: int) -> np.ndarray:
    """Image displacement ``(dx, dy)`` at each of ``3·steps_per_saccade + 1`` sampling times, from (0, 0)."""
    offsets = [np.zeros(2)]
    position = np.zeros(2)
    for move in SACCADES:
        for k in range(1, steps_per_saccade + 1):
            offsets.append(position + np.asarray(move) * k / steps_per_saccade)
        position = position + np.asarray(move)
    return np.stack(offsets)


def render_saccades(images: torch.Tensor, sensor_size: int, image_size: int, steps_per_saccade: int) -> torch.Tensor:
    """Intensity views ``[K, N, sensor_size, sensor_size]`` of images ``[N, h, w]`` (values in [0, 1]).

    Each image is upsampled bilinearly to ``image_size``², placed on a dark sensor so that the saccade
    triangle is centred, and shifted by sub-pixel amounts with bilinear interpolation.
    """
    up = F.interpolate(images[:, None].float(), size=(image_size, image_size), mode="bilinear", align_corners=False)
    offsets = saccade_offsets(steps_per_saccade)
    span = offsets.max(0) - offsets.min(0)
    origin = (sensor_size - image_size - span) / 2.0
    pixels = torch.arange(sensor_size, dtype=torch.float32)
    views = []
    for dx, dy in offsets:
        u = pixels - float(origin[0] + dx)  # source column in the upsampled image
        v = pixels - float(origin[1] + dy)
        gx = (2 * u + 1) / image_size - 1  # grid_sample's align_corners=False normalisation
        gy = (2 * v + 1) / image_size - 1
        grid = torch.stack(torch.meshgrid(gx, gy, indexing="xy"), dim=-1).expand(len(up), -1, -1, -1)
        views.append(F.grid_sample(up, grid, mode="bilinear", padding_mode="zeros", align_corners=False)[:, 0])
    return torch.stack(views)


def contrast_events(intensity: np.ndarray, times_us: np.ndarray, threshold: float, eps: float) -> list[np.ndarray]:
    """DVS events of intensity views ``[K, N, H, W]`` sampled at ``times_us`` (K), one array per sample n.

    Implements the rule of the module docstring: event at (x, y, t_k) iff
    ``|log(I_k + eps) - L_ref| > threshold``, then ``L_ref = log(I_k + eps)``; ``L_ref`` starts at view 0.
    Returns structured arrays (``EVENT_DTYPE``: x, y, t [µs], p) sorted by time, then y, then x.
    """
    if threshold <= 0 or eps <= 0:
        raise ValueError(f"contrast threshold and eps must be > 0, got threshold={threshold}, eps={eps}")
    intensity = np.asarray(intensity, dtype=np.float32)
    reference = np.log(intensity[0] + eps)
    chunks = []
    for k in range(1, len(intensity)):
        log_k = np.log(intensity[k] + eps)
        change = log_k - reference
        fired = np.abs(change) > threshold
        n, y, x = np.nonzero(fired)
        chunks.append((n, x, y, np.full(len(n), times_us[k], dtype=np.int64), change[fired] > 0))
        reference[fired] = log_k[fired]
    n, x, y, t, p = (np.concatenate(parts) for parts in zip(*chunks, strict=True))
    order = np.argsort(n, kind="stable")  # keeps time order within each sample
    counts = np.bincount(n, minlength=intensity.shape[1])
    events = np.empty(len(n), dtype=EVENT_DTYPE)
    events["x"], events["y"], events["t"], events["p"] = x[order], y[order], t[order], p[order]
    return np.split(events, np.cumsum(counts)[:-1])


def emulate_saccade_events(
    images: torch.Tensor,
    sensor_size: int = 34,
    image_size: int = 24,
    steps_per_saccade: int = 10,
    saccade_us: int = 100_000,
    threshold: float = 0.3,
    eps: float = 0.1,
) -> list[np.ndarray]:
    """Events of images ``[N, h, w]`` (values in [0, 1]) moved along the three saccades (deterministic)."""
    views = render_saccades(images, sensor_size, image_size, steps_per_saccade).numpy()
    times = np.round(np.arange(len(views)) * saccade_us / steps_per_saccade).astype(np.int64)
    return contrast_events(views, times, threshold, eps)
