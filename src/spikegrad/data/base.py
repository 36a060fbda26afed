"""Common DataModule behaviour: what the model needs to know about the data, and the DataLoaders."""

from __future__ import annotations

from typing import Literal

import lightning as L
from torch.utils.data import DataLoader, Dataset

Encoding = Literal["direct", "sequence"]


class SpikeDataModule(L.LightningDataModule):
    """Base for spikegrad DataModules.

    Subclasses set ``num_classes``, ``input_shape`` (one time step of one sample, e.g. ``(C, H, W)``) and
    ``encoding``: ``"direct"`` for static samples ``[B, *input_shape]`` that the model repeats T times, or
    ``"sequence"`` for samples that already have time, ``[B, T, *input_shape]``. The CLI links these three
    into the model. Subclasses fill ``self.train_set``, ``self.val_set`` and ``self.test_set`` in ``setup``.

    Args:
        batch_size, num_workers, pin_memory: DataLoader settings.
        drop_last: leave out the last incomplete training batch of every epoch (validation and test keep every
            sample).
    """

    num_classes: int
    input_shape: tuple[int, ...]
    encoding: Encoding = "direct"

    def __init__(
        self, batch_size: int = 64, num_workers: int = 0, pin_memory: bool = False, drop_last: bool = False
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"data batch_size must be >= 1, got {batch_size}")
        if num_workers < 0:
            raise ValueError(f"data num_workers must be >= 0, got {num_workers}")
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.drop_last = drop_last
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        self.test_set: Dataset | None = None

    def _loader(self, dataset: Dataset | None, shuffle: bool, drop_last: bool = False) -> DataLoader:
        if dataset is None:
            raise RuntimeError(f"{type(self).__name__}.setup() has not created this split")
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            drop_last=drop_last,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        """Shuffled training batches; with ``drop_last`` the last incomplete batch of each epoch is left out."""
        return self._loader(self.train_set, shuffle=True, drop_last=self.drop_last)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, shuffle=False)

    def log_dir(self) -> str | None:
        """The attached trainer's log folder (``None`` outside a fit or without a logger)."""
        trainer = getattr(self, "trainer", None)
        return trainer.log_dir if trainer is not None and trainer.logger is not None else None
