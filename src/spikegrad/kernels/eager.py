"""The eager kernels: the fused multi-step forward and backward written with a few in-place torch operations.

The recursion (docs/design.md, "The neuron family"), for time-first input ``x[t]``, ``t = 1..T``, ``v[0] = 0``::

    h[t] = λ·v[t-1] + κ·x[t],   s[t] = H(h[t] - θ),   v[t] = h[t]·(1 - s[t])  (hard)  |  h[t] - θ·s[t]  (soft)

Forward works in place in the potentials buffer: ``h = κ·x`` for all steps, then per step one comparison into
a reused float buffer and one fused multiply-add; the spikes of all steps come from one comparison at the end.
Backward computes every per-element factor for all ``T`` steps in a few vectorised kernels (the masked
surrogate derivative ``g̃`` comes from :meth:`spikegrad.surrogates.Surrogate.derivative`), leaving one fused
multiply-add per step in the time recursion::

    a[t] := ∂L/∂h[t] = ∂L/∂s[t]·g̃[t] + ∂L/∂h_ext[t] + λ·∂v[t]/∂h[t]·a[t+1],   ∂L/∂x[t] = κ·a[t]

with ``∂v/∂h = 1 - s`` (hard) or ``1`` (soft) when the reset's gradient is detached, and ``(1 - s) - h·g̃``
(hard) or ``1 - θ·g̃`` (soft) when it is kept. When λ, κ or θ are learnable (tensors that need a gradient),
the same pass also reduces their gradients::

    ∂L/∂λ = Σ_t a[t+1]·v[t],   ∂L/∂κ = Σ_t a[t]·x[t],   ∂L/∂θ = Σ_t (-∂L/∂s[t]·g̃[t] + λ·a[t+1]·∂v[t]/∂θ)

with ``∂v/∂θ = 0`` (hard, detached), ``h·g̃`` (hard, kept), ``-s`` (soft, detached) or ``-s + θ·g̃`` (soft,
kept). When no parameter gradient is asked for, the backward carries ``κ·a`` instead of ``a`` (the recursion is
linear in ``a``): κ enters with the surrogate derivative's last operation and ``∂L/∂x = κ·a`` costs no pass of
its own. Reset factors are float 0/1 tensors, never boolean ones (boolean arithmetic is several times slower on
CPU); there is no per-step allocation.
"""

from __future__ import annotations

import torch

__all__ = ["backward", "forward"]


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """Membrane state is integrated in at least float32, also when the input is fp16/bf16 (autocast)."""
    return torch.promote_types(dtype, torch.float32)


def forward(x: torch.Tensor, decay: float, input_scale: float, v_threshold: float, hard_reset: bool):
    """``(h, spikes)`` for all steps: ``h = κ·x``, then ``h[t] += λ·v[t-1]`` per step, in place.

    Per step one comparison into a reused float buffer and one fused multiply-add (hard reset:
    ``h[t] += λ·h[t-1]·1[h[t-1] < θ]``; soft: ``v = h[t-1] - θ·s[t-1]``, ``h[t] += λ·v``).
    """
    h_seq = torch.empty_like(x, dtype=compute_dtype(x.dtype))
    if input_scale != 1.0:
        torch.mul(x, input_scale, out=h_seq)
    else:
        h_seq.copy_(x)
    T = x.shape[0]
    if T > 1 and decay != 0.0:
        buf = torch.empty_like(h_seq[0])
        for t in range(1, T):
            prev = h_seq[t - 1]
            if hard_reset:
                torch.lt(prev, v_threshold, out=buf)
                h_seq[t].addcmul_(prev, buf, value=decay)
            else:
                torch.ge(prev, v_threshold, out=buf)
                torch.add(prev, buf, alpha=-v_threshold, out=buf)
                h_seq[t].add_(buf, alpha=decay)
    spikes = torch.ge(h_seq, v_threshold, out=torch.empty_like(x))
    return h_seq, spikes


def _after_reset(h_seq: torch.Tensor, v_threshold: float, hard_reset: bool) -> torch.Tensor:
    """``v[t]`` for all steps from the potentials: ``h·1[h < θ]`` (hard) or ``h - θ·1[h >= θ]`` (soft)."""
    if hard_reset:
        return torch.lt(h_seq, v_threshold).to(h_seq.dtype).mul_(h_seq)
    return torch.ge(h_seq, v_threshold).to(h_seq.dtype).mul_(-v_threshold).add_(h_seq)


def backward(h_seq, x, grad_spikes, grad_h_ext, decay, input_scale, v_threshold, hard_reset, detach_reset,
             surrogate, recorder, needs=(False, False, False)):
    """``(∂L/∂x, ∂L/∂λ, ∂L/∂κ, ∂L/∂θ)``; the parameter gradients are 0-d tensors when ``needs`` asks for them.

    ``x`` (the input) is only read for ``∂L/∂κ``. ``recorder``, when a dict, receives the fractions of zero
    entries of ``g̃`` and of ``∂L/∂h``.
    """
    need_decay, need_scale, need_threshold = needs
    # Without parameter gradients the whole backward works on κ·a instead of a (the recursion is linear in a):
    # κ is folded into g̃'s last operation instead of a final pass ∂L/∂x = κ·a over memory.
    fold = input_scale if (input_scale != 1.0 and not any(needs)) else 1.0
    # κ·g̃ = κ·∂s/∂h for all steps at once, in a fresh buffer that the local gradient is then computed in.
    g = surrogate.derivative(h_seq, v_threshold, fold)
    if recorder is not None:
        recorder["surrogate_zero_fraction"] = (g == 0).float().mean().detach()
    T = h_seq.shape[0]
    recursion = T > 1 and decay != 0.0
    # ∂v[t]/∂h[t] for all steps where it needs g̃ (kept reset gradient); None: computed per step or constant 1.
    carry = None
    if recursion and not detach_reset:
        if hard_reset:
            carry = torch.lt(h_seq, v_threshold, out=torch.empty_like(g))
            carry.addcmul_(h_seq, g, value=-1.0 / fold)
        else:
            carry = torch.mul(g, -v_threshold / fold).add_(1.0)
    # Local gradient ∂L/∂s[t]·g̃[t] + ∂L/∂h_ext[t], computed in place in g.
    if grad_spikes is not None:
        grad_h = g.mul_(grad_spikes)
    else:
        grad_h = g.zero_()
    grad_threshold = -grad_h.sum() if need_threshold else None  # Σ -∂L/∂s·g̃, the spikes' own share
    if grad_h_ext is not None:
        grad_h.add_(grad_h_ext, alpha=fold)
    # Time recursion ∂L/∂h[t] += λ·∂v[t]/∂h[t]·∂L/∂h[t+1], one fused op per step.
    if recursion:
        buf = torch.empty_like(grad_h[0]) if (carry is None and hard_reset) else None
        for t in range(T - 2, -1, -1):
            if carry is not None:
                grad_h[t].addcmul_(grad_h[t + 1], carry[t], value=decay)
            elif hard_reset:
                torch.lt(h_seq[t], v_threshold, out=buf)
                grad_h[t].addcmul_(grad_h[t + 1], buf, value=decay)
            else:
                grad_h[t].add_(grad_h[t + 1], alpha=decay)
    if recorder is not None:
        recorder["grad_h_zero_fraction"] = (grad_h == 0).float().mean().detach()
    grad_decay = grad_scale = None
    if T > 1 and need_decay:
        grad_decay = (grad_h[1:] * _after_reset(h_seq[:-1], v_threshold, hard_reset)).sum()
    elif need_decay:
        grad_decay = grad_h.new_zeros(())
    if need_threshold and recursion and not (hard_reset and detach_reset):
        # ∂v/∂θ from the quantities at hand: the spikes s = 1[h >= θ] and, kept, g̃ through carry
        spikes = torch.ge(h_seq[:-1], v_threshold).to(h_seq.dtype)
        if hard_reset:  # kept: h·g̃ = (1 - s) - carry
            dv_dtheta = torch.sub(1.0, spikes).sub_(carry[:-1])
        elif detach_reset:
            dv_dtheta = spikes.neg_()
        else:  # soft, kept: -s + θ·g̃ = 1 - s - carry
            dv_dtheta = torch.sub(1.0, spikes).sub_(carry[:-1])
        grad_threshold = grad_threshold + decay * (grad_h[1:] * dv_dtheta).sum()
    if need_scale:
        grad_scale = (grad_h * x).sum()
    grad_x = grad_h.mul_(input_scale) if (input_scale != 1.0 and fold == 1.0) else grad_h
    return grad_x, grad_decay, grad_scale, grad_threshold
