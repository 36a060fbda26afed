"""Shared test settings: small thread count (CI has 2 cores) and a temporary working folder per test."""

import os

import pytest
import torch

torch.set_num_threads(min(2, os.cpu_count() or 1))

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def repo_root() -> str:
    return REPO_ROOT


@pytest.fixture
def one_thread():
    """One torch thread for tests of tiny models: avoids thread contention on the shared CI cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(params=["native", "torch"])
def mask_stream(request, monkeypatch):
    """Runs a test with each implementation of the MSG mask stream: the C extension and the torch operations.

    ``native`` needs the extension, which ``pip install`` builds when a C compiler is there;
    ``tests/test_masks.py::test_the_extension_is_built_where_a_compiler_is`` fails when one is and it was not.
    """
    from spikegrad.surrogates import masks

    if request.param == "native" and not masks.native_available():
        pytest.skip("the C extension of the MSG masks was not built (no C compiler at install time)")
    monkeypatch.setattr(masks, "STREAM", request.param)
    return request.param


@pytest.fixture(scope="session")
def digits_checkpoints(tmp_path_factory) -> dict[str, str]:
    """Checkpoints of an MLP (no batch norm) and a conv net (conv-BN-LIF) trained on the digits for a few seconds,
    shared by the export and NeuroBench tests."""
    from _peers import CONVNET, MLP_WITHOUT_BN, train_digits

    folder = tmp_path_factory.mktemp("digits_runs")
    return {"mlp": train_digits(folder, "mlp", MLP_WITHOUT_BN), "convnet": train_digits(folder, "convnet", CONVNET)}
