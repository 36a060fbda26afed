"""Static image sets through torchvision: MNIST, Fashion-MNIST, CIFAR-10, CIFAR-100 (direct encoding)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch
import torchvision.datasets.cifar as tv_cifar
from torch.utils.data import Subset
from torchvision import datasets as tvd
from torchvision import transforms as tvt

from spikegrad.data.base import SpikeDataModule
from spikegrad.data.errors import CorruptFileError, DatasetNotFoundError
from spikegrad.data.formats import check_idx
from spikegrad.data.splits import seeded_holdout, write_split
from spikegrad.data.storage import staged_download
from spikegrad.data.verify import check_counts, check_verify_mode


class Cutout:
    """Cutout (DeVries & Taylor, arXiv 1708.04552): zero a ``length``×``length`` square in every channel of a
    ``[C, H, W]`` tensor. Its centre ``(y, x)`` is a uniformly drawn pixel and the square covers rows
    ``[y - length//2, y + length//2)`` and columns ``[x - length//2, x + length//2)``, clipped at the border (so it
    is smaller near an edge): one hole, as the MSG code's ``Cutout(n_holes=1, length=16)`` (Brain-Cog-Lab/msg,
    dataset.py:935-973, used at dataset.py:747 and 822)."""

    def __init__(self, length: int = 16) -> None:
        if length < 1:
            raise ValueError(f"cutout length must be >= 1, got {length}")
        self.length = length

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        _, height, width = image.shape
        cy, cx = int(torch.randint(height, ())), int(torch.randint(width, ()))
        half = self.length // 2
        image = image.clone()
        image[:, max(0, cy - half) : min(height, cy + half), max(0, cx - half) : min(width, cx + half)] = 0
        return image

    def __repr__(self) -> str:
        return f"Cutout(length={self.length})"


class TorchvisionDataModule(SpikeDataModule):
    """A torchvision classification set with a seeded train/val split and the usual augmentation.

    Before torchvision reads the set, every file it needs is checked here (:meth:`_check_file`: idx headers and
    sizes for MNIST-like sets, torchvision's md5 sums for CIFAR), so a missing or damaged file is named instead
    of torchvision's "Dataset not found or corrupted".

    Args:
        data_dir: download / lookup folder (torchvision's own layout below it).
        batch_size, num_workers, pin_memory: DataLoader settings.
        val_fraction: fraction of the training images held out (seeded, without augmentation) for
            validation; 0 validates on the test split.
        split_seed: seed of that hold-out.
        crop_padding: random crop back to full size after zero padding by this many pixels (0: off).
        flip: random horizontal flip.
        auto_augment: torchvision ``AutoAugment`` with the CIFAR-10 policy (Cubuk et al. 2019), after the crop and
            flip.
        cutout: side of the Cutout square (0: off), cut from the image in ``[0, 1]`` before it is normalised (as the
            MSG code, dataset.py:747-748: the square is black; DeVries & Taylor cut after normalising).
        mean, std: per-channel normalisation (``None``: the set's own statistics, ``mean`` and ``std`` of the
            class); e.g. the MSG code's CIFAR-10 values ``[0.4914, 0.4822, 0.4465]``, ``[0.2023, 0.1994, 0.2010]``.
        drop_last: leave out the last incomplete training batch of every epoch (as the MSG code does).
        download: download missing files in ``prepare_data`` (files that are present are never replaced).
        verify: checks at ``setup``: ``quick`` (files, sizes, headers, counts), ``full`` (also every label) or
            ``off``.
        allow_subset: accept a deliberately reduced copy (fewer images than published), with a warning.
    """

    dataset_name: str
    dataset_class: type
    entries: tuple[str, ...]
    layout: str
    source: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    published: tuple[int, int]  # train, test

    def __init__(
        self,
        data_dir: str = "data",
        batch_size: int = 128,
        num_workers: int = 0,
        val_fraction: float = 0.1,
        split_seed: int = 0,
        crop_padding: int = 0,
        flip: bool = False,
        auto_augment: bool = False,
        cutout: int = 0,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        drop_last: bool = False,
        download: bool = True,
        pin_memory: bool = False,
        verify: str = "quick",
        allow_subset: bool = False,
    ) -> None:
        super().__init__(batch_size, num_workers, pin_memory, drop_last)
        if not 0 <= val_fraction < 1:
            raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
        if crop_padding < 0 or cutout < 0:
            raise ValueError(f"crop_padding and cutout must be >= 0, got {crop_padding} and {cutout}")
        self.data_dir = data_dir
        self.val_fraction = val_fraction
        self.split_seed = split_seed
        self.download = download
        self.verify = check_verify_mode(verify)
        self.allow_subset = allow_subset
        channels = self.input_shape[0]
        mean, std = tuple(self.mean if mean is None else mean), tuple(self.std if std is None else std)
        if len(mean) != channels or len(std) != channels or min(std) <= 0:
            raise ValueError(f"{self.dataset_name}: mean and std need {channels} values each (std > 0), got "
                             f"{list(mean)} and {list(std)}")
        size = self.input_shape[1:]
        augment = [tvt.RandomCrop(size, padding=crop_padding)] if crop_padding else []
        augment += [tvt.RandomHorizontalFlip()] if flip else []
        augment += [tvt.AutoAugment(tvt.AutoAugmentPolicy.CIFAR10)] if auto_augment else []
        augment += [tvt.ToTensor()] + ([Cutout(cutout)] if cutout else [])
        self.train_transform = tvt.Compose([*augment, tvt.Normalize(mean, std)])
        self.eval_transform = tvt.Compose([tvt.ToTensor(), tvt.Normalize(mean, std)])
        self.save_hyperparameters({"dataset": self.dataset_name})
        self.split_sizes: dict[str, int] = {}

    def _open(self, root: str, train: bool, transform=None, download: bool = False):
        return self.dataset_class(root, train=train, transform=transform, download=download)

    # --- the files and their checks (subclasses) ----------------------------------------------------------------
    def _files(self) -> dict[str, str]:
        """``{path below data_dir: "train" | "test" | "meta"}`` of every file torchvision reads."""
        raise NotImplementedError

    def _check_file(self, path: str, part: str, full: bool) -> tuple[str | None, int | None]:
        """``(problem, number of samples the file holds or None)``."""
        raise NotImplementedError

    # --- checks ------------------------------------------------------------------------------------------------
    def _missing_files(self) -> list[str]:
        return [rel for rel in self._files() if not os.path.isfile(os.path.join(self.data_dir, rel))]

    def _checked_counts(self, full: bool = False) -> dict[str, dict[str, int]]:
        """Checks every file that is present; the first damaged one raises :class:`CorruptFileError`. Returns the
        sample counts the files state, ``{part: {path: count}}`` (e.g. idx images and labels)."""
        counts: dict[str, dict[str, int]] = {}
        for rel, part in self._files().items():
            path = os.path.abspath(os.path.join(self.data_dir, rel))
            if not os.path.isfile(path):
                continue
            problem, n = self._check_file(path, part, full)
            if problem:
                raise CorruptFileError(
                    self.dataset_name,
                    path,
                    f"{problem}; delete it and run again with download: true to fetch a fresh copy",
                )
            if n is not None:
                counts.setdefault(part, {})[path] = n
        return counts

    def _missing(self, missing: list[str], reason: str = "") -> DatasetNotFoundError:
        root = os.path.join(self.data_dir, self.entries[0])
        everything = len(missing) == len(self._files())
        path = root if everything else os.path.join(self.data_dir, missing[0])
        if not everything and len(missing) > 1:
            reason = ", ".join(filter(None, [reason, f"and {len(missing) - 1} more files"]))
        return DatasetNotFoundError(self.dataset_name, os.path.abspath(path), self.layout, self.source, reason)

    def prepare_data(self) -> None:
        """Downloads the missing files once (rank 0) into a staging folder; only files that are absent are moved
        into ``data_dir``. A damaged file that is present is named (and not downloaded over)."""
        missing = self._missing_files()
        if not missing:
            return
        self._checked_counts()  # a damaged file that is present: named now, before a download it would not replace
        if not self.download:
            raise self._missing(missing, "download=False")

        def fetch(staging: str) -> None:
            self._open(staging, True, download=True)
            self._open(staging, False, download=True)

        try:
            staged_download(self.data_dir, missing, fetch)
        except Exception as err:  # network, checksum or archive failure: one line naming the dataset
            raise self._missing(missing, f"download failed: {type(err).__name__}: {err}") from None
        still = self._missing_files()
        if still:
            raise self._missing(still, "the download did not produce these files")

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        missing = self._missing_files()
        if missing:
            raise self._missing(missing)
        if self.verify != "off":
            counts = self._checked_counts(full=self.verify == "full")
            for part, found in counts.items():
                if len(set(found.values())) > 1:
                    shown = ", ".join(f"{os.path.basename(path)} {n}" for path, n in found.items())
                    raise CorruptFileError(
                        self.dataset_name,
                        os.path.dirname(next(iter(found))),
                        f"{part} files disagree on the count: {shown}",
                    )
            published = dict(zip(("train", "test"), self.published, strict=True))
            check_counts(
                self.dataset_name,
                {part: (*next(iter(found.items())), published[part]) for part, found in counts.items()},
                self.allow_subset,
                unit="images",
            )
        train = self._open(self.data_dir, True, self.train_transform)
        indices, val_indices = seeded_holdout(list(range(len(train))), self.val_fraction, self.split_seed)
        self.train_set = Subset(train, indices)
        self.test_set = self._open(self.data_dir, False, self.eval_transform)
        self.val_set = (
            Subset(self._open(self.data_dir, True, self.eval_transform), val_indices) if val_indices else self.test_set
        )
        self.split_sizes = {"train": len(indices), "val": len(val_indices), "test": len(self.test_set)}
        self._write_split(indices, val_indices, len(self.test_set))

    def _write_split(self, train: list[int], val: list[int], n_test: int) -> None:
        log_dir = self.log_dir()
        if log_dir is None or not self.trainer.is_global_zero:
            return
        split = {
            "train": [f"train[{i}]" for i in train],
            "val": [f"train[{i}]" for i in val],
            "test": [f"test[{i}]" for i in range(n_test)],
        }
        files = {part: sorted(rel for rel, p in self._files().items() if p == part) for part in ("train", "test")}
        write_split(log_dir, self.dataset_name, split, root=os.path.abspath(self.data_dir), files=files)


class _IdxDataModule(TorchvisionDataModule):
    """MNIST-like sets: four idx files (images and labels of train and t10k) in ``<Class>/raw``."""

    def _files(self) -> dict[str, str]:
        raw = os.path.join(self.dataset_class.__name__, "raw")
        names = [os.path.splitext(os.path.basename(url))[0] for url, _ in self.dataset_class.resources]
        return {os.path.join(raw, name): "train" if name.startswith("train") else "test" for name in names}

    def _check_file(self, path: str, part: str, full: bool) -> tuple[str | None, int | None]:
        labels = "labels" in os.path.basename(path)
        problem, n = check_idx(path, os.path.getsize(path), () if labels else self.input_shape[1:])
        if problem is None and labels and full:
            values = np.fromfile(path, dtype=np.uint8, offset=8)
            if values.size and values.max() >= self.num_classes:
                return f"label {int(values.max())} outside 0..{self.num_classes - 1}", n
        return problem, n


class MNISTDataModule(_IdxDataModule):
    """MNIST (LeCun et al. 1998): 60000 train / 10000 test 28×28 grey digits; normalised with (0.1307, 0.3081)."""

    dataset_name = "MNIST"
    dataset_class = tvd.MNIST
    entries = ("MNIST",)
    layout = "MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte (idx files)"
    source = "torchvision's MNIST mirrors (download=True), originally http://yann.lecun.com/exdb/mnist/"
    num_classes = 10
    input_shape = (1, 28, 28)
    published = (60_000, 10_000)
    mean, std = (0.1307,), (0.3081,)


class FashionMNISTDataModule(_IdxDataModule):
    """Fashion-MNIST (Xiao et al. 2017): 60000 / 10000 28×28 grey clothing images; normalised (0.2860, 0.3530)."""

    dataset_name = "Fashion-MNIST"
    dataset_class = tvd.FashionMNIST
    entries = ("FashionMNIST",)
    layout = "FashionMNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte (idx files)"
    source = "https://github.com/zalandoresearch/fashion-mnist (torchvision download=True)"
    num_classes = 10
    input_shape = (1, 28, 28)
    published = (60_000, 10_000)
    mean, std = (0.2860,), (0.3530,)


class CIFAR10DataModule(TorchvisionDataModule):
    """CIFAR-10 (Krizhevsky 2009): 50000 / 10000 32×32 colour images, 10 classes.

    Default augmentation: random crop with 4-pixel padding and horizontal flip (the TET code's,
    brain-intelligence-lab/temporal_efficient_training, data_loaders.py:18); ``auto_augment: true`` and
    ``cutout: 16`` give the MSG code's pipeline (Brain-Cog-Lab/msg, dataset.py:742-749).
    """

    dataset_name = "CIFAR-10"
    dataset_class = tvd.CIFAR10
    entries = ("cifar-10-batches-py",)
    layout = "cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta} (Python pickles, md5-checked)"
    source = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz (extract into data/)"
    num_classes = 10
    input_shape = (3, 32, 32)
    published = (50_000, 10_000)
    mean, std = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)

    def __init__(self, data_dir: str = "data", crop_padding: int = 4, flip: bool = True, **kwargs) -> None:
        super().__init__(data_dir=data_dir, crop_padding=crop_padding, flip=flip, **kwargs)

    def _files(self) -> dict[str, str]:
        base, cls = self.entries[0], self.dataset_class
        files = {os.path.join(base, name): "train" for name, _ in cls.train_list}
        files.update({os.path.join(base, name): "test" for name, _ in cls.test_list})
        files[os.path.join(base, cls.meta["filename"])] = "meta"
        return files

    def _check_file(self, path: str, part: str, full: bool) -> tuple[str | None, int | None]:
        cls, name = self.dataset_class, os.path.basename(path)
        md5 = dict(cls.train_list + cls.test_list + [[cls.meta["filename"], cls.meta["md5"]]])[name]
        # torchvision's own integrity check (looked up at call time: tests fabricate files without the md5)
        return (None if tv_cifar.check_integrity(path, md5) else f"md5 differs from torchvision's {md5}"), None


class CIFAR100DataModule(CIFAR10DataModule):
    """CIFAR-100 (Krizhevsky 2009): 50000 / 10000 32×32 colour images, 100 fine classes."""

    dataset_name = "CIFAR-100"
    dataset_class = tvd.CIFAR100
    entries = ("cifar-100-python",)
    layout = "cifar-100-python/{train,test,meta} (Python pickles, md5-checked)"
    source = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz (extract into data/)"
    num_classes = 100
    mean, std = (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)
