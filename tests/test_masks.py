"""The MSG mask generator (spikegrad.surrogates.masks): the SplitMix64 stream, exact p, masks independent of threads,
the same masks from the C extension and from torch operations, and an install without a C compiler."""

import math
import os
import shutil
import subprocess
import sys
import sysconfig

import numpy as np
import pytest
import torch

from spikegrad.surrogates import masks
from spikegrad.surrogates.masks import BernoulliMask, dense, drop_cut, stream_bits

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
def test_stream_is_splitmix64(n, seed, mask_stream):
    assert np.array_equal(stream_bits(n, seed).numpy(), splitmix64_halves(n, seed))


def test_mask_operations_agree_with_the_stream_and_each_other(mask_stream):
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


def test_masks_do_not_depend_on_the_thread_count(mask_stream):
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


def test_drop_probability_is_the_cut_and_the_draw_is_one_number_from_torch(mask_stream):
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


def test_neighbouring_entries_and_halves_of_a_word_are_independent(mask_stream):
    kept = BernoulliMask(torch.zeros(1_000_000), 0.5).kept().double()
    for lag in (1, 2, 3, 512):  # 1: the two halves of one word; 512: the same lane of the next block
        both = float((kept[:-lag] * kept[lag:]).mean())
        assert abs(both - 0.25) < 5 * math.sqrt(0.25 * 0.75 / kept.numel())


def test_layout_checks_are_one_line_errors(mask_stream):
    assert dense(torch.zeros(2, 3, 4).permute(2, 0, 1)) and not dense(torch.zeros(4, 6)[:, ::2])
    mask = BernoulliMask(torch.zeros(4, 6), 0.5)
    with pytest.raises(ValueError, match="dense in memory"):
        mask.shifted(torch.zeros(4, 12)[:, ::2], 1.0)
    with pytest.raises(ValueError, match="cannot apply to potentials of shape"):
        mask.shifted(torch.zeros(4, 5), 1.0)
    with pytest.raises(ValueError, match="potentials must be float32 or float64 for the CPU mask, got bfloat16"):
        mask.shifted(torch.zeros(4, 6, dtype=torch.bfloat16), 1.0)


def test_both_streams_give_the_same_masks_in_any_memory_layout():
    if not masks.native_available():
        pytest.skip("the C extension of the MSG masks was not built (no C compiler at install time)")
    h = torch.randn(3, 4, 5, 6, dtype=torch.float64).permute(0, 2, 3, 1)  # dense, not contiguous
    results = {}
    for stream in ("native", "torch"):
        masks.STREAM = stream
        try:
            torch.manual_seed(8)
            mask = BernoulliMask(h, 0.45)
            results[stream] = (mask.shifted(h, 0.3), mask.kept(h), mask.kept(), mask.fill_(h.clone().float(), 2.0))
        finally:
            masks.STREAM = masks._choose_stream()
    for a, b in zip(results["native"], results["torch"], strict=True):
        assert torch.equal(a, b)


def test_the_extension_is_built_where_a_compiler_is():
    """The torch stream is the fallback of installs without a C compiler, not of a build that went wrong."""
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    headers = os.path.isfile(os.path.join(sysconfig.get_paths()["include"], "Python.h"))
    if shutil.which(compiler) and headers:
        assert masks.native_available() and masks.STREAM == "native"
    assert masks.STREAM in ("native", "torch")


def test_the_stream_can_be_chosen_by_environment_variable(monkeypatch):
    monkeypatch.setenv("SPIKEGRAD_MASK_STREAM", "torch")
    assert masks._choose_stream() == "torch"
    monkeypatch.setenv("SPIKEGRAD_MASK_STREAM", "auto")
    assert masks._choose_stream() == ("native" if masks.native_available() else "torch")
    monkeypatch.setenv("SPIKEGRAD_MASK_STREAM", "nosuch")
    with pytest.raises(ValueError, match="SPIKEGRAD_MASK_STREAM must be one of auto, native, torch; got 'nosuch'"):
        masks._choose_stream()


@pytest.mark.slow
def test_install_without_a_c_compiler_runs_msg_with_the_torch_stream(tmp_path, repo_root):
    """``pip install`` with no working C compiler (CC=/bin/false) succeeds without the extension, and masked
    surrogate gradients run from that install with the torch stream (p within 5σ, the stream bit for bit)."""
    source, target = tmp_path / "source", tmp_path / "site"  # a clean copy: no build/ or built extension of ours
    source.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(os.path.join(repo_root, name), source / name)
    shutil.copytree(os.path.join(repo_root, "src"), source / "src",
                    ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__", "*.egg-info"))
    env = {**os.environ, "CC": "/bin/false", "LDSHARED": "/bin/false", "PIP_NO_INPUT": "1"}
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-cache-dir",
         "--target", str(target), str(source)], capture_output=True, text=True, env=env, timeout=600)
    assert install.returncode == 0, install.stderr[-3000:]
    built = [p for p in (target / "spikegrad" / "surrogates").iterdir() if p.name.startswith("_bernoulli")
             and p.suffix != ".c"]
    assert built == []  # the extension was skipped, not built by another compiler
    check = """
import math, torch, spikegrad
from spikegrad.surrogates import ATan, masks
from spikegrad.neurons import lif_multistep
assert spikegrad.__file__.startswith(TARGET), spikegrad.__file__
assert not masks.native_available() and masks.STREAM == "torch"
x = torch.full((1, 200_000), 1.0, requires_grad=True)
(g,) = torch.autograd.grad(lif_multistep(x, ATan(mask_p=0.5), decay_input=False)[0].sum(), x)
dropped = float((g == 0).double().mean())
assert abs(dropped - 0.5) < 5 * math.sqrt(0.25 / 200_000), dropped
print("ok", dropped, masks.stream_bits(2, 0).tolist())
""".replace("TARGET", repr(str(target)))
    run = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(target)}, cwd=str(tmp_path))
    assert run.returncode == 0, run.stderr[-3000:]
    halves = splitmix64_halves(2, 0).tolist()
    assert run.stdout.split()[0] == "ok" and run.stdout.strip().endswith(str(halves))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
def test_masks_share_torchs_openmp_runtime():
    """The extension needs libgomp.so.1, which the loader finds already loaded with torch: one thread pool.

    (Other packages may bring OpenMP runtimes of their own under other names, e.g. scikit-learn's.)
    """
    if not masks.native_available():
        pytest.skip("the C extension of the MSG masks was not built (no C compiler at install time)")
    from spikegrad.surrogates import _bernoulli  # noqa: F401

    with open("/proc/self/maps") as maps:
        runtimes = {line.split()[-1] for line in maps if line.rstrip().endswith("/libgomp.so.1")}
    assert len(runtimes) == 1 and os.path.dirname(torch.__file__) in next(iter(runtimes)), runtimes
