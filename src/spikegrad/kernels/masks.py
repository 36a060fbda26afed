"""Bernoulli masks of masked surrogate gradients (MSG): ``m ~ Bernoulli(1 - p)`` i.i.d. per element.

MSG (Li et al., "Masked surrogate gradients", Neural Networks 2024) multiplies the surrogate derivative by a
fresh mask on every backward, per neuron, per time step and per layer. Drawing those numbers with torch's CPU
generator (a serial Mersenne Twister) costs more than the neuron's whole backward, so on the CPU the mask comes
from a counter-based stream instead (:file:`_bernoulli.c`): the 32-bit uniform number of the element at memory
position ``i`` is half of the SplitMix64 output of word ``i // 2`` (low half for even ``i``), started from a
64-bit seed, and the element is dropped when that number is below ``cut = round(p·2³²)``, so
``P(drop) = cut / 2³²`` (``p`` to within 2⁻³³).

Each mask takes its seed with **one draw from torch's default CPU generator**, so ``torch.manual_seed`` (and
Lightning's ``seed_everything``, and the generator state stored in checkpoints) decide every mask, whatever the
number of threads. As the stream is a function of ``(seed, i)``, nothing is stored: the neuron's backward
writes ``h - θ`` with ``+∞`` at the dropped entries in the pass it makes anyway (every surrogate is exactly 0
at ``+∞``, tested), a substitute derivative (``mask_fill``) is a second pass over the same mask, and the
compiled backward reads the mask as a ``uint8`` tensor. The generator runs on torch's OpenMP threads.

On other devices (CUDA) the mask is ``torch.rand(...) >= p`` from that device's own generator (fast there);
the masks then differ from the CPU's for the same seed.
"""

from __future__ import annotations

import math

import torch

from spikegrad.kernels import _bernoulli

__all__ = ["BernoulliMask", "dense", "drop_cut", "stream_bits"]


def drop_cut(p: float) -> int:
    """The 32-bit threshold ``round(p·2³²)``: an entry whose uniform number is below it is dropped."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"mask probability must be in [0, 1), got {p!r}")
    return min(round(p * 2**32), 2**32 - 1)


def dense(t: torch.Tensor) -> bool:
    """Whether ``t`` covers exactly ``numel`` consecutive elements of memory (any dimension order, no gaps)."""
    expected = 1
    for stride, size in sorted((st, s) for s, st in zip(t.shape, t.stride(), strict=True) if s != 1):
        if stride != expected:
            return False
        expected *= size
    return True


def _native_seed() -> int:
    """One 64-bit draw from torch's default CPU generator (as an unsigned integer)."""
    return int(torch.randint(-(2**63), 2**63 - 1, (), dtype=torch.int64)) % 2**64


class BernoulliMask:
    """One MSG mask for tensors laid out like ``like``: element kept with probability ``1 - p``.

    Created once per backward (that is the only random draw of a backward); all its methods see the same mask.
    On the CPU ``like`` must be dense (:func:`dense`; the neuron's buffers always are) and of float32 or
    float64 for :meth:`shifted` and :meth:`fill_`.
    """

    def __init__(self, like: torch.Tensor, p: float) -> None:
        self.p = float(p)
        self.cut = drop_cut(self.p)
        self.shape, self.device = like.shape, like.device
        self.native = like.device.type == "cpu"
        if self.native:
            self.seed = _native_seed()
            self._kept = None
        else:
            self.seed = None
            self._kept = torch.rand(like.shape, device=like.device) >= self.p

    def _check(self, t: torch.Tensor, what: str, dtypes=(torch.float32, torch.float64)) -> None:
        if t.shape != self.shape or t.device != self.device:
            raise ValueError(f"mask of shape {tuple(self.shape)} on {self.device} cannot apply to {what} of shape "
                             f"{tuple(t.shape)} on {t.device}")
        if self.native and not dense(t):
            raise ValueError(f"{what} must be dense in memory for the CPU mask (strides {t.stride()})")
        if self.native and t.dtype not in dtypes:
            names = " or ".join(str(d).removeprefix("torch.") for d in dtypes)
            raise ValueError(f"{what} must be {names} for the CPU mask, got {str(t.dtype).removeprefix('torch.')}")

    def shifted(self, h: torch.Tensor, v_threshold: float) -> torch.Tensor:
        """A new tensor ``h - θ`` where kept and ``+∞`` where dropped, laid out like ``h``."""
        self._check(h, "potentials")
        if not self.native:
            return torch.where(self._kept, h - v_threshold, math.inf)
        out = torch.empty_like(h)
        _bernoulli.shift(h.data_ptr(), out.data_ptr(), h.numel(), h.dtype == torch.float64, float(v_threshold),
                         self.seed, self.cut, torch.get_num_threads())
        return out

    def fill_(self, g: torch.Tensor, value: float) -> torch.Tensor:
        """Set the dropped entries of ``g`` to ``value``, in place (MSG's substitute derivative)."""
        self._check(g, "gradient")
        if not self.native:
            return g.masked_fill_(~self._kept, value)
        _bernoulli.fill(g.data_ptr(), g.numel(), g.dtype == torch.float64, float(value), self.seed, self.cut,
                        torch.get_num_threads())
        return g

    def kept(self, like: torch.Tensor | None = None) -> torch.Tensor:
        """The mask as a ``uint8`` tensor of 1 (kept) and 0 (dropped), laid out like ``like`` (default: contiguous).

        A kernel that reads it should multiply by ``kept.to(float)``: in the CPU code ``torch.compile`` generates,
        that is as fast as a float mask with a quarter of the memory traffic, while ``torch.where(kept != 0, ...)``
        was 6× slower (measured, ``docs/benchmarks.md``).
        """
        out = torch.empty(self.shape, dtype=torch.uint8, device=self.device) if like is None else \
            torch.empty_like(like, dtype=torch.uint8)
        self._check(out, "mask", (torch.uint8,))
        if not self.native:
            return out.copy_(self._kept)
        _bernoulli.keep(out.data_ptr(), out.numel(), self.seed, self.cut, torch.get_num_threads())
        return out


def stream_bits(n: int, seed: int) -> torch.Tensor:
    """The first ``n`` 32-bit uniform numbers of the CPU stream for ``seed`` (as int64, for tests and docs)."""
    out = torch.empty(n, dtype=torch.int32)
    _bernoulli.bits(out.data_ptr(), n, seed % 2**64)
    return out.to(torch.int64) % 2**32
