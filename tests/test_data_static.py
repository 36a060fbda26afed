"""torchvision DataModules on tiny files fabricated in the real formats (MNIST idx, CIFAR pickled batches)."""

import os
import pickle

import numpy as np
import pytest
import torch
import torchvision.datasets.cifar as tv_cifar

from spikegrad.data import (
    CIFAR10DataModule,
    CIFAR100DataModule,
    DatasetNotFoundError,
    FashionMNISTDataModule,
    MNISTDataModule,
)
from spikegrad.data.static import Cutout


def write_idx(folder, prefix, images, labels):
    """idx format (LeCun): big-endian magic 2051/2049, sizes, then unsigned bytes."""
    os.makedirs(folder, exist_ok=True)
    n, rows, cols = images.shape
    with open(os.path.join(folder, f"{prefix}-images-idx3-ubyte"), "wb") as f:
        f.write(np.array([2051, n, rows, cols], dtype=">i4").tobytes() + images.astype(np.uint8).tobytes())
    with open(os.path.join(folder, f"{prefix}-labels-idx1-ubyte"), "wb") as f:
        f.write(np.array([2049, n], dtype=">i4").tobytes() + labels.astype(np.uint8).tobytes())


@pytest.mark.parametrize("module, folder", [(MNISTDataModule, "MNIST"), (FashionMNISTDataModule, "FashionMNIST")])
def test_mnist_idx_files(tmp_path, module, folder):
    rng = np.random.default_rng(0)
    raw = tmp_path / folder / "raw"
    write_idx(raw, "train", rng.integers(0, 256, (20, 28, 28)), np.arange(20) % 10)
    write_idx(raw, "t10k", np.full((6, 28, 28), 255), np.array([9, 8, 7, 6, 5, 4]))
    dm = module(data_dir=str(tmp_path), batch_size=4, val_fraction=0.2, download=False)
    dm.prepare_data()
    dm.setup()
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (16, 4, 6)
    x, y = next(iter(dm.test_dataloader()))
    assert x.shape == (4, 1, 28, 28) and x.dtype == torch.float32 and y.tolist() == [9, 8, 7, 6]
    torch.testing.assert_close(x, torch.full_like(x, (1.0 - dm.mean[0]) / dm.std[0]))
    assert dm.input_shape == (1, 28, 28) and dm.encoding == "direct"
    # the seeded split does not depend on anything else
    again = module(data_dir=str(tmp_path), val_fraction=0.2, download=False)
    again.setup()
    assert again.val_set.indices == dm.val_set.indices


def write_cifar(folder, names, label_key, rng, n=8, classes=10):
    os.makedirs(folder, exist_ok=True)
    for name in names:
        batch = {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), label_key: list(np.arange(n) % classes)}
        with open(os.path.join(folder, name), "wb") as f:
            pickle.dump(batch, f)


@pytest.fixture
def no_md5(monkeypatch):
    """The fabricated pickles cannot match torchvision's md5 sums; the integrity check is all that is skipped."""
    monkeypatch.setattr(tv_cifar, "check_integrity", lambda *args, **kwargs: True)


def test_cifar10_pickled_batches(tmp_path, no_md5):
    rng = np.random.default_rng(1)
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar(folder, [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"], "labels", rng)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"c{i}" for i in range(10)]}, f)
    dm = CIFAR10DataModule(data_dir=str(tmp_path), batch_size=8, val_fraction=0.1, auto_augment=True, cutout=8)
    dm.prepare_data()
    dm.setup()
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (36, 4, 8)
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (8, 3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    xt, yt = next(iter(dm.test_dataloader()))
    assert yt.tolist() == list(range(8))
    assert abs(float(xt.mean())) < 1.0  # normalised


def test_cifar100_pickled_batches(tmp_path, no_md5):
    rng = np.random.default_rng(2)
    folder = tmp_path / "cifar-100-python"
    write_cifar(folder, ["train", "test"], "fine_labels", rng, n=10, classes=100)
    with open(folder / "meta", "wb") as f:
        pickle.dump({"fine_label_names": [f"c{i}" for i in range(100)]}, f)
    dm = CIFAR100DataModule(data_dir=str(tmp_path), batch_size=10, val_fraction=0)
    dm.setup()
    x, y = next(iter(dm.val_dataloader()))  # val_fraction=0 validates on the test split
    assert x.shape == (10, 3, 32, 32) and dm.num_classes == 100 and y.tolist() == list(range(10))


def test_missing_static_set(tmp_path):
    dm = CIFAR10DataModule(data_dir=str(tmp_path), download=False)
    with pytest.raises(DatasetNotFoundError) as info:
        dm.prepare_data()
    message = str(info.value)
    assert message.startswith(f"CIFAR-10 not found at {tmp_path / 'cifar-10-batches-py'} (download=False)")
    assert "data_batch_1..5" in message and "cifar-10-python.tar.gz" in message


def test_failed_static_download_leaves_nothing(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(tv_cifar, "download_and_extract_archive", offline)
    with pytest.raises(DatasetNotFoundError, match="download failed: OSError: no network"):
        CIFAR10DataModule(data_dir=str(tmp_path)).prepare_data()
    assert os.listdir(tmp_path) == []


def test_cutout_zeroes_a_clipped_square():
    torch.manual_seed(0)
    out = Cutout(4)(torch.ones(3, 32, 32))
    zeros = (out == 0).all(0)
    assert 4 <= int(zeros.sum()) <= 16 and bool((out[:, zeros] == 0).all())
