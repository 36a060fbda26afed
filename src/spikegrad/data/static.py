"""Static image sets through torchvision: MNIST, Fashion-MNIST, CIFAR-10, CIFAR-100 (direct encoding)."""

from __future__ import annotations

import os

import torch
from torch.utils.data import Subset
from torchvision import datasets as tvd
from torchvision import transforms as tvt

from spikegrad.data.base import SpikeDataModule
from spikegrad.data.errors import DatasetNotFoundError
from spikegrad.data.splits import seeded_holdout
from spikegrad.data.storage import staged_download


class Cutout:
    """Cutout (DeVries & Taylor, arXiv 1708.04552): zero a ``length``×``length`` square, centred on a
    uniformly drawn pixel and clipped at the border, in a ``[C, H, W]`` tensor."""

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

    Args:
        data_dir: download / lookup folder (torchvision's own layout below it).
        batch_size, num_workers, pin_memory: DataLoader settings.
        val_fraction: fraction of the training images held out (seeded, without augmentation) for
            validation; 0 validates on the test split.
        split_seed: seed of that hold-out.
        crop_padding: random crop back to full size after zero padding by this many pixels (0: off).
        flip: random horizontal flip.
        auto_augment: torchvision ``AutoAugment`` with the CIFAR-10 policy (Cubuk et al. 2019).
        cutout: side of the Cutout square (0: off).
        download: download a missing set in ``prepare_data``.
    """

    dataset_name: str
    dataset_class: type
    entries: tuple[str, ...]
    layout: str
    source: str
    mean: tuple[float, ...]
    std: tuple[float, ...]

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
        download: bool = True,
        pin_memory: bool = False,
    ) -> None:
        super().__init__(batch_size, num_workers, pin_memory)
        if not 0 <= val_fraction < 1:
            raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
        if crop_padding < 0 or cutout < 0:
            raise ValueError(f"crop_padding and cutout must be >= 0, got {crop_padding} and {cutout}")
        self.data_dir = data_dir
        self.val_fraction = val_fraction
        self.split_seed = split_seed
        self.download = download
        size = self.input_shape[1:]
        normalize = [tvt.ToTensor(), tvt.Normalize(self.mean, self.std)]
        augment = [tvt.RandomCrop(size, padding=crop_padding)] if crop_padding else []
        augment += [tvt.RandomHorizontalFlip()] if flip else []
        augment += [tvt.AutoAugment(tvt.AutoAugmentPolicy.CIFAR10)] if auto_augment else []
        self.train_transform = tvt.Compose([*augment, *normalize, *([Cutout(cutout)] if cutout else [])])
        self.eval_transform = tvt.Compose(normalize)
        self.save_hyperparameters({"dataset": self.dataset_name})

    def _open(self, root: str, train: bool, transform=None, download: bool = False):
        return self.dataset_class(root, train=train, transform=transform, download=download)

    def _present(self) -> bool:
        try:
            self._open(self.data_dir, True)
            self._open(self.data_dir, False)
        except RuntimeError:  # torchvision: "Dataset not found or corrupted"
            return False
        return True

    def _missing(self, reason: str = "") -> DatasetNotFoundError:
        path = os.path.abspath(os.path.join(self.data_dir, self.entries[0]))
        return DatasetNotFoundError(self.dataset_name, path, self.layout, self.source, reason)

    def prepare_data(self) -> None:
        """Downloads once (rank 0) into a staging folder, moved into ``data_dir`` only when complete."""
        if self._present():
            return
        if not self.download:
            raise self._missing("download=False")

        def fetch(staging: str) -> None:
            self._open(staging, True, download=True)
            self._open(staging, False, download=True)

        try:
            staged_download(self.data_dir, self.entries, fetch)
        except Exception as err:  # network, checksum or archive failure: one line naming the dataset
            raise self._missing(f"download failed: {type(err).__name__}: {err}") from None
        if not self._present():
            raise self._missing("the download did not produce the expected files")

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        if not self._present():
            raise self._missing()
        train = self._open(self.data_dir, True, self.train_transform)
        indices, val_indices = seeded_holdout(list(range(len(train))), self.val_fraction, self.split_seed)
        self.train_set = Subset(train, indices)
        self.test_set = self._open(self.data_dir, False, self.eval_transform)
        self.val_set = (
            Subset(self._open(self.data_dir, True, self.eval_transform), val_indices) if val_indices else self.test_set
        )


class MNISTDataModule(TorchvisionDataModule):
    """MNIST (LeCun et al. 1998): 60000 train / 10000 test 28×28 grey digits; normalised with (0.1307, 0.3081)."""

    dataset_name = "MNIST"
    dataset_class = tvd.MNIST
    entries = ("MNIST",)
    layout = "MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte (idx files)"
    source = "torchvision's MNIST mirrors (download=True), originally http://yann.lecun.com/exdb/mnist/"
    num_classes = 10
    input_shape = (1, 28, 28)
    mean, std = (0.1307,), (0.3081,)


class FashionMNISTDataModule(TorchvisionDataModule):
    """Fashion-MNIST (Xiao et al. 2017): 60000 / 10000 28×28 grey clothing images; normalised (0.2860, 0.3530)."""

    dataset_name = "Fashion-MNIST"
    dataset_class = tvd.FashionMNIST
    entries = ("FashionMNIST",)
    layout = "FashionMNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte (idx files)"
    source = "https://github.com/zalandoresearch/fashion-mnist (torchvision download=True)"
    num_classes = 10
    input_shape = (1, 28, 28)
    mean, std = (0.2860,), (0.3530,)


class CIFAR10DataModule(TorchvisionDataModule):
    """CIFAR-10 (Krizhevsky 2009): 50000 / 10000 32×32 colour images, 10 classes.

    Default augmentation as the MSG / TET codes: random crop with 4-pixel padding and horizontal flip;
    ``auto_augment`` and ``cutout: 16`` add the MSG paper's stronger recipe.
    """

    dataset_name = "CIFAR-10"
    dataset_class = tvd.CIFAR10
    entries = ("cifar-10-batches-py",)
    layout = "cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta} (Python pickles, md5-checked)"
    source = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz (extract into data/)"
    num_classes = 10
    input_shape = (3, 32, 32)
    mean, std = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)

    def __init__(self, data_dir: str = "data", crop_padding: int = 4, flip: bool = True, **kwargs) -> None:
        super().__init__(data_dir=data_dir, crop_padding=crop_padding, flip=flip, **kwargs)


class CIFAR100DataModule(CIFAR10DataModule):
    """CIFAR-100 (Krizhevsky 2009): 50000 / 10000 32×32 colour images, 100 fine classes."""

    dataset_name = "CIFAR-100"
    dataset_class = tvd.CIFAR100
    entries = ("cifar-100-python",)
    layout = "cifar-100-python/{train,test,meta} (Python pickles, md5-checked)"
    source = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz (extract into data/)"
    num_classes = 100
    mean, std = (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)
