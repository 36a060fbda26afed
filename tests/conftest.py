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
