"""The MSG mask generator (spikegrad.kernels.masks): the SplitMix64 stream, exact p, masks independent of threads."""

import math
import os
import sys

import numpy as np
import pytest
import torch

from spikegrad.kernels.masks import BernoulliMask, dense, drop_cut, stream_bits

GAMMA = np.uint64(0x9E3779B97F4A7C15)


def splitmix64_halves(n: int, seed: int) -> np.ndarray:
    """Reference: the 32-bit halves (low first) of SplitMix64's outputs from state ``seed``, in numpy uint64."""
    words = (n + 1) // 2
    with np.errstate(over="ignore"):
        z = np.uint64(seed) + (np.arange(1, words + 1, dtype=np.uint64) * GAMMA)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    halves = np.stack([z & np.uint64(0xFFFFFFFF), z >> np.uint64(32)], axis=1).reshape(-1)
    return halves[:n].astype(np.int64)


def test_splitmix64_reference_matches_the_published_first_outputs():
    # SplitMix64 from state 0 (Vigna's splitmix64.c): first output 0xE220A8397B1DCDAF
    first = splitmix64_halves(2, 0)
    assert (int(first[1]) << 32) | int(first[0]) == 0xE220A8397B1DCDAF


@pytest.mark.parametrize("n", [1, 2, 511, 512, 513, 1024, 100_003])
@pytest.mark.parametrize("seed", [0, 1, 2**63 + 12345, 2**64 - 1])
def test_native_stream_is_splitmix64(n, seed):
    assert np.array_equal(stream_bits(n, seed).numpy(), splitmix64_halves(n, seed))


def test_mask_operations_agree_with_the_stream_and_each_other():
    torch.manual_seed(0)
    h = torch.randn(3, 70_001, dtype=torch.float64)
    p = 0.37
    mask = BernoulliMask(h, p)
    kept = mask.kept().bool()
    expected = torch.from_numpy(splitmix64_halves(h.numel(), mask.seed) >= drop_cut(p)).view(h.shape)
    assert torch.equal(kept, expected)
    shifted = mask.shifted(h, 0.5)
    assert torch.equal(shifted[kept], h[kept] - 0.5)
    assert torch.all(torch.isinf(shifted[~kept]) & (shifted[~kept] > 0))
    g = torch.randn(3, 70_001)
    filled = mask.fill_(g.clone(), 0.25)
    assert torch.equal(filled[kept], g[kept]) and torch.all(filled[~kept] == 0.25)


def test_masks_do_not_depend_on_the_thread_count():
    h = torch.randn(4, 300_000)  # large enough to be split over threads
    threads = torch.get_num_threads()
    results = []
    try:
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            torch.manual_seed(5)
            mask = BernoulliMask(h, 0.5)
            results.append((mask.shifted(h, 1.0), mask.kept(), mask.fill_(h.clone(), 7.0)))
    finally:
        torch.set_num_threads(threads)
    for other in results[1:]:
        assert all(torch.equal(a, b) for a, b in zip(results[0], other, strict=True))


def test_drop_probability_is_the_cut_and_the_draw_is_one_number_from_torch():
    assert drop_cut(0.0) == 0 and drop_cut(0.5) == 2**31 and drop_cut(0.4) == round(0.4 * 2**32)
    with pytest.raises(ValueError, match=r"mask probability must be in \[0, 1\)"):
        drop_cut(1.0)
    torch.manual_seed(11)
    mask = BernoulliMask(torch.zeros(10), 0.3)
    torch.manual_seed(11)
    assert mask.seed == int(torch.randint(-(2**63), 2**63 - 1, (), dtype=torch.int64)) % 2**64
    n, p = 2_000_000, 0.3
    dropped = 1 - BernoulliMask(torch.zeros(n), p).kept().double().mean().item()
    assert abs(dropped - p) < 5 * math.sqrt(p * (1 - p) / n)


def test_neighbouring_entries_and_halves_of_a_word_are_independent():
    kept = BernoulliMask(torch.zeros(1_000_000), 0.5).kept().double()
    for lag in (1, 2, 3, 512):  # 1: the two halves of one word; 512: the same lane of the next block
        both = float((kept[:-lag] * kept[lag:]).mean())
        assert abs(both - 0.25) < 5 * math.sqrt(0.25 * 0.75 / kept.numel())


def test_layout_checks_are_one_line_errors():
    assert dense(torch.zeros(2, 3, 4).permute(2, 0, 1)) and not dense(torch.zeros(4, 6)[:, ::2])
    mask = BernoulliMask(torch.zeros(4, 6), 0.5)
    with pytest.raises(ValueError, match="dense in memory"):
        mask.shifted(torch.zeros(4, 12)[:, ::2], 1.0)
    with pytest.raises(ValueError, match="cannot apply to potentials of shape"):
        mask.shifted(torch.zeros(4, 5), 1.0)
    with pytest.raises(ValueError, match="potentials must be float32 or float64 for the CPU mask, got bfloat16"):
        mask.shifted(torch.zeros(4, 6, dtype=torch.bfloat16), 1.0)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
def test_masks_share_torchs_openmp_runtime():
    """The extension needs libgomp.so.1, which the loader finds already loaded with torch: one thread pool.

    (Other packages may bring OpenMP runtimes of their own under other names, e.g. scikit-learn's.)
    """
    from spikegrad.kernels import _bernoulli  # noqa: F401

    with open("/proc/self/maps") as maps:
        runtimes = {line.split()[-1] for line in maps if line.rstrip().endswith("/libgomp.so.1")}
    assert len(runtimes) == 1 and os.path.dirname(torch.__file__) in next(iter(runtimes)), runtimes
