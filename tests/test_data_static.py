"""torchvision DataModules on tiny files fabricated in the real formats (MNIST idx, CIFAR pickled batches)."""

import json
import os
import pickle

import lightning as L
import numpy as np
import pytest
import torch
import torchvision.datasets as tvd
import torchvision.datasets.cifar as tv_cifar
from lightning.pytorch.loggers import CSVLogger

from _data_files import write_idx
from spikegrad.data import (
    CIFAR10DataModule,
    CIFAR100DataModule,
    CorruptFileError,
    DatasetNotFoundError,
    FashionMNISTDataModule,
    IncompleteDatasetError,
    MNISTDataModule,
)
from spikegrad.data.static import Cutout


def make_mnist(root, folder="MNIST", n_train=20, n_test=6):
    rng = np.random.default_rng(0)
    raw = os.path.join(root, folder, "raw")
    write_idx(raw, "train", rng.integers(0, 256, (n_train, 28, 28)), np.arange(n_train) % 10)
    write_idx(raw, "t10k", np.full((n_test, 28, 28), 255), np.arange(9, 9 - n_test, -1))
    return raw


@pytest.mark.parametrize("module, folder", [(MNISTDataModule, "MNIST"), (FashionMNISTDataModule, "FashionMNIST")])
def test_mnist_idx_files(tmp_path, module, folder):
    make_mnist(tmp_path, folder)
    dm = module(data_dir=str(tmp_path), batch_size=4, val_fraction=0.2, download=False, allow_subset=True)
    dm.prepare_data()
    dm.setup()
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (16, 4, 6)
    x, y = next(iter(dm.test_dataloader()))
    assert x.shape == (4, 1, 28, 28) and x.dtype == torch.float32 and y.tolist() == [9, 8, 7, 6]
    torch.testing.assert_close(x, torch.full_like(x, (1.0 - dm.mean[0]) / dm.std[0]))
    assert dm.input_shape == (1, 28, 28) and dm.encoding == "direct"
    # the seeded split does not depend on anything else
    again = module(data_dir=str(tmp_path), val_fraction=0.2, download=False, allow_subset=True)
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


def test_cifar_file_with_another_md5_is_named_and_not_downloaded_over(tmp_path, monkeypatch):
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar(folder, [f"data_batch_{i}" for i in range(1, 6)], "labels", np.random.default_rng(1))
    expected = (
        f"^CIFAR-10: {folder / 'data_batch_1'}: md5 differs from torchvision's c99cafc152244af753f735de768cd75f; "
    )
    monkeypatch.setattr(tv_cifar, "download_and_extract_archive", lambda *a, **k: pytest.fail("downloaded"))
    with pytest.raises(CorruptFileError, match=expected + "delete it and run again with download: true"):
        CIFAR10DataModule(data_dir=str(tmp_path)).prepare_data()  # test_batch is missing, data_batch_1 damaged
    (folder / "test_batch").write_bytes(b"")
    (folder / "batches.meta").write_bytes(b"")
    with pytest.raises(CorruptFileError, match=expected):
        CIFAR10DataModule(data_dir=str(tmp_path)).setup()


def test_static_split_file_names_samples_and_files(tmp_path, no_md5):
    make_mnist(tmp_path)
    dm = MNISTDataModule(data_dir=str(tmp_path), val_fraction=0.2, allow_subset=True)
    dm.trainer = L.Trainer(logger=CSVLogger(str(tmp_path / "logs")), enable_progress_bar=False)
    dm.setup()
    with open(os.path.join(dm.trainer.log_dir, "data_split.json")) as f:
        split = json.load(f)
    assert [len(split[k]) for k in ("train", "val", "test")] == [16, 4, 6] and split["test"][0] == "test[0]"
    assert split["files"]["test"] == ["MNIST/raw/t10k-images-idx3-ubyte", "MNIST/raw/t10k-labels-idx1-ubyte"]
    assert not set(split["train"]) & set(split["val"]) and set(split["sha256"]) == {"train", "val", "test"}


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
    assert message.startswith(f"CIFAR-10: {tmp_path / 'cifar-10-batches-py'}: not found (download=False)")
    assert "data_batch_1..5" in message and "cifar-10-python.tar.gz" in message


def test_truncated_idx_file_is_named_and_no_download_is_thrown_away(tmp_path, monkeypatch):
    raw = make_mnist(tmp_path)
    path = os.path.join(raw, "train-images-idx3-ubyte")
    with open(path, "r+b") as f:
        f.truncate(16 + 20 * 784 - 100)
    expected = (
        f"^MNIST: {path}: 15596 bytes, the idx header promises 20 items in 15696 bytes \\(truncated or padded\\); "
        "delete it and run again with download: true to fetch a fresh copy$"
    )
    with pytest.raises(CorruptFileError, match=expected):
        MNISTDataModule(data_dir=str(tmp_path), allow_subset=True).setup()
    # a missing file is downloaded, but never over a damaged one that is present
    os.remove(os.path.join(raw, "t10k-labels-idx1-ubyte"))
    fetched = []
    monkeypatch.setattr(tvd.MNIST, "download", lambda self: fetched.append(self.root))
    with pytest.raises(CorruptFileError, match=expected):
        MNISTDataModule(data_dir=str(tmp_path), allow_subset=True).prepare_data()
    assert fetched == []


def test_a_missing_idx_file_is_downloaded_alone(tmp_path, monkeypatch):
    raw = make_mnist(tmp_path)
    kept = os.path.join(raw, "train-images-idx3-ubyte")
    before = os.stat(kept).st_mtime_ns
    os.remove(os.path.join(raw, "t10k-labels-idx1-ubyte"))

    def download(self):  # torchvision's downloader, offline: the four files into <root>/MNIST/raw
        make_mnist(self.root, n_train=30, n_test=6)

    monkeypatch.setattr(tvd.MNIST, "download", download)
    dm = MNISTDataModule(data_dir=str(tmp_path), allow_subset=True, val_fraction=0)
    dm.prepare_data()
    assert os.stat(kept).st_mtime_ns == before  # the files that were there are untouched
    assert sorted(os.listdir(raw)) == sorted(
        ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
    )
    assert sorted(os.listdir(tmp_path)) == ["MNIST"]  # the staging folder is gone
    dm.setup()
    assert dm.split_sizes == {"train": 20, "val": 0, "test": 6}


def test_mnist_counts_against_the_published_numbers(tmp_path):
    make_mnist(tmp_path)
    with pytest.raises(
        IncompleteDatasetError,
        match=f"^MNIST: {tmp_path / 'MNIST' / 'raw' / 'train-images-idx3-ubyte'}: 20 images, fewer than the 60000",
    ):
        MNISTDataModule(data_dir=str(tmp_path)).setup()
    raw = os.path.join(tmp_path, "MNIST", "raw")
    write_idx(raw, "t10k", np.zeros((5, 28, 28)), np.arange(5))  # 5 images, then a labels file of 6
    write_idx(os.path.join(tmp_path, "other"), "t10k", np.zeros((6, 28, 28)), np.arange(6) + 5)
    os.replace(os.path.join(tmp_path, "other", "t10k-labels-idx1-ubyte"), os.path.join(raw, "t10k-labels-idx1-ubyte"))
    with pytest.raises(
        CorruptFileError,
        match=r"raw: test files disagree on the count: t10k-images-idx3-ubyte 5, t10k-labels-idx1-ubyte 6$",
    ):
        MNISTDataModule(data_dir=str(tmp_path), allow_subset=True).setup()
    write_idx(raw, "t10k", np.zeros((6, 28, 28)), np.arange(6) + 5)  # labels 5..10: 10 is not a digit
    MNISTDataModule(data_dir=str(tmp_path), allow_subset=True).setup()  # quick reads no labels
    with pytest.raises(CorruptFileError, match="t10k-labels-idx1-ubyte: label 10 outside 0..9"):
        MNISTDataModule(data_dir=str(tmp_path), allow_subset=True, verify="full").setup()


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


def test_cutout_square_follows_the_clipping_rule():
    """Rows [cy - 8, cy + 8) and columns [cx - 8, cx + 8) clipped to the image, for a centre drawn uniformly over
    the pixels (the MSG code's Cutout(n_holes=1, length=16)): a full 16×16 square away from the borders."""
    torch.manual_seed(0)
    heights = set()
    for _ in range(300):
        zeros = (Cutout(16)(torch.ones(3, 32, 32)) == 0).all(0)
        rows, cols = torch.nonzero(zeros.any(1)).flatten(), torch.nonzero(zeros.any(0)).flatten()
        top, bottom, left, right = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
        assert int(zeros.sum()) == (bottom - top) * (right - left)  # one rectangle, every channel zero
        for low, high in ((top, bottom), (left, right)):
            centre = low + 8 if low > 0 else high - 8  # the drawn centre, recovered from the clipped edges
            assert (low, high) == (max(0, centre - 8), min(32, centre + 8)) and 0 <= centre < 32
        heights.add(bottom - top)
    assert heights == set(range(8, 17))  # 8 (centre 0) to 16 (inside)


def test_cifar_train_pipeline_cuts_out_before_normalising(tmp_path, no_md5):
    """Crop, flip, AutoAugment, to [0, 1], Cutout, normalise with the given statistics (the MSG code's order):
    the square is black, i.e. (0 - mean) / std in every channel; the last incomplete batch is dropped."""
    rng = np.random.default_rng(1)
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar(folder, [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"], "labels", rng)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"c{i}" for i in range(10)]}, f)
    mean, std = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)
    dm = CIFAR10DataModule(data_dir=str(tmp_path), batch_size=8, val_fraction=0, crop_padding=0, flip=False,
                           cutout=16, mean=mean, std=std, drop_last=True)
    dm.setup()
    black = torch.tensor([-m / s for m, s in zip(mean, std, strict=True)]).view(3, 1, 1)
    for image, _ in (dm.train_set[i] for i in range(10)):
        cut = torch.isclose(image, black.expand_as(image), atol=1e-6).all(0)
        assert 64 <= int(cut.sum()) <= 256
    image, _ = dm.test_set[0]  # evaluation: no cutout, the same normalisation
    raw = torch.as_tensor(dm.test_set.data[0], dtype=torch.float32).permute(2, 0, 1) / 255
    torch.testing.assert_close(image, (raw - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1))
    for drop_last, batches in ((True, 2), (False, 3)):  # 40 training images in batches of 16
        sized = CIFAR10DataModule(data_dir=str(tmp_path), batch_size=16, val_fraction=0, drop_last=drop_last)
        sized.setup()
        assert len(sized.train_dataloader()) == batches and len(sized.test_dataloader()) == 1
    with pytest.raises(ValueError, match="CIFAR-10: mean and std need 3 values each"):
        CIFAR10DataModule(data_dir=str(tmp_path), mean=[0.5], std=[0.5])
