"""The bundled default data: scikit-learn's ``load_digits`` (1797 handwritten digits, 8×8, 10 classes)."""

from __future__ import annotations

import hashlib

import torch
from torch.utils.data import TensorDataset

from spikegrad.data.base import SpikeDataModule
from spikegrad.data.splits import write_split


def seeded_split(n: int, val_fraction: float, test_fraction: float, seed: int) -> dict[str, torch.Tensor]:
    """A fixed random split of ``range(n)`` into train/val/test index tensors (same seed, same split)."""
    if not (0 <= val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError(
            f"split fractions must satisfy 0 <= val < 1, 0 < test < 1, val + test < 1; "
            f"got val_fraction={val_fraction}, test_fraction={test_fraction}"
        )
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_test = round(n * test_fraction)
    n_val = round(n * val_fraction)
    return {"test": perm[:n_test], "val": perm[n_test : n_test + n_val], "train": perm[n_test + n_val :]}


def describe_split(split: dict[str, torch.Tensor], seed: int) -> dict:
    """Sizes, seed and a fingerprint of each split's indices (what the logs record)."""
    info: dict = {"seed": seed}
    for name, idx in split.items():
        info[f"{name}_size"] = len(idx)
        info[f"{name}_sha1"] = hashlib.sha1(idx.sort().values.numpy().tobytes()).hexdigest()[:12]
    return info


class DigitsDataModule(SpikeDataModule):
    """``load_digits`` as 1×8×8 images, a seeded train/val/test split and standardisation.

    Pixels (0..16) are scaled to [0, 1], then standardised with the training split's mean and std. The split
    sizes, seed and index fingerprints are saved as hyperparameters and the indices themselves are written
    to ``data_split.json`` in the run's log folder.
    """

    num_classes = 10
    input_shape = (1, 8, 8)
    encoding = "direct"

    def __init__(
        self,
        batch_size: int = 64,
        num_workers: int = 0,
        val_fraction: float = 0.1,
        test_fraction: float = 0.2,
        split_seed: int = 0,
        pin_memory: bool = False,
    ) -> None:
        super().__init__(batch_size, num_workers, pin_memory)
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.split_seed = split_seed
        self.split = seeded_split(1797, val_fraction, test_fraction, split_seed)
        self.save_hyperparameters({"dataset": "digits", **describe_split(self.split, split_seed)})

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        from sklearn.datasets import load_digits

        digits = load_digits()
        images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
        labels = torch.tensor(digits.target, dtype=torch.long)
        train = images[self.split["train"]]
        mean, std = train.mean(), train.std()
        images = (images - mean) / std
        self.train_set, self.val_set, self.test_set = (
            TensorDataset(images[self.split[name]], labels[self.split[name]]) for name in ("train", "val", "test")
        )
        self._write_split()

    def _write_split(self) -> None:
        log_dir = self.log_dir()
        if log_dir is None or not self.trainer.is_global_zero:
            return
        split = {name: self.split[name].tolist() for name in ("train", "val", "test")}
        write_split(log_dir, "digits", split, samples="indices into sklearn.datasets.load_digits()")
