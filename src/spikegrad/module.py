"""SpikingClassifier: encoder -> spiking backbone -> decoder -> loss and metrics, as a LightningModule."""

from __future__ import annotations

import copy
from collections.abc import Callable
from functools import partial

import lightning as L
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torchmetrics.classification import MulticlassAccuracy

from spikegrad.decoding import Decoder, MeanDecoder
from spikegrad.layer_names import named_spiking_layers
from spikegrad.losses import CrossEntropyLoss, Loss
from spikegrad.models import Backbone, BackboneFactory, SpikingConvNet
from spikegrad.neurons import LIF, SpikingNeuron, spiking_layers
from spikegrad.regularizers import PDASettings, potential_statistics, potential_window_penalty
from spikegrad.surrogates import ATan, Surrogate

ENCODINGS = ("direct", "sequence")
STAGES = ("train", "val", "test")

NeuronClass = Callable[[Surrogate], SpikingNeuron]
"""What ``model.neuron`` holds: a :class:`SpikingNeuron` subclass (with its options) before its surrogate is given."""
DecoderClass = Callable[[int], Decoder]
"""What ``model.decoder`` holds: a :class:`Decoder` subclass (with its options) before the number of steps is given."""


class SpikingClassifier(L.LightningModule):
    """A spiking classifier whose parts and training method are plain settings.

    Neuron, surrogate, backbone, decoder and loss are classes that configs name by ``class_path`` (a short class
    name for spikegrad's own, the import path of a class in any module for your own) with their options in
    ``init_args``; ``spikegrad fit --model.neuron.help LIF`` lists a class's options.

    Args:
        backbone: the spiking network (a :class:`~spikegrad.models.Backbone` subclass); the classifier gives it
            the data's ``input_shape`` and ``num_classes`` and the neuron.
        neuron: the spiking layers (a :class:`~spikegrad.neurons.SpikingNeuron` subclass: ``LIF``, ``PLIF``,
            ``IF``, ...); every layer is built from it with its own copy of ``surrogate``.
        surrogate: the surrogate gradient of the spike (a :class:`~spikegrad.surrogates.Surrogate`, with the
            masking options of MSG).
        decoder: how per-step logits ``[T, B, K]`` become a prediction (a :class:`~spikegrad.decoding.Decoder`
            subclass); the classifier gives it T.
        loss: training loss (a :class:`~spikegrad.losses.Loss`).
        time_steps: T, the number of steps a static sample is presented (direct encoding). Sequence data brings
            its own T (``data_time_steps``); leave this unset then, or give the same number.
        pda: potential distribution adjustment, a regulariser added to the training loss
            (see :mod:`spikegrad.regularizers`; ``weight: 0`` is off).
        optimizer: optimizer factory (``class_path`` + ``init_args`` in configs).
        lr_scheduler: optional learning-rate scheduler factory, stepped every epoch.
        num_classes: number of classes (linked from the DataModule by the CLI).
        input_shape: one time step of one sample, e.g. ``[1, 8, 8]`` (linked from the DataModule).
        encoding: ``direct`` repeats a static sample ``[B, ...]`` over ``time_steps``; ``sequence`` takes
            ``[B, T, ...]`` as it comes (linked from the DataModule).
        data_time_steps: T of sequence data (linked from the DataModule's ``time_steps`` when it has one).
    """

    def __init__(
        self,
        backbone: BackboneFactory = SpikingConvNet,
        neuron: NeuronClass = LIF,
        surrogate: Surrogate = ATan(),
        decoder: DecoderClass = MeanDecoder,
        loss: Loss = CrossEntropyLoss(),
        time_steps: int | None = None,
        pda: PDASettings = PDASettings(),
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
        num_classes: int = 10,
        input_shape: tuple[int, ...] = (1, 8, 8),
        encoding: str = "direct",
        data_time_steps: int | None = None,
    ) -> None:
        super().__init__()
        if encoding not in ENCODINGS:
            raise ValueError(f"unknown encoding {encoding!r}; valid choices: {', '.join(ENCODINGS)}")
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        self.save_hyperparameters(ignore=["optimizer", "lr_scheduler"])
        self.optimizer_factory = optimizer
        self.lr_scheduler_factory = lr_scheduler
        self.encoding = encoding
        self.time_steps = resolve_time_steps(time_steps, data_time_steps, encoding)
        # the T in use goes into the hyperparameters (checkpoints, the logger), where it must agree with the data's
        self.save_hyperparameters({"time_steps": self.time_steps})
        prototype = copy.deepcopy(surrogate)

        def make_neuron() -> SpikingNeuron:
            return neuron(copy.deepcopy(prototype))  # every layer owns its surrogate (per-layer searches)

        make_neuron()  # validates the neuron and surrogate settings before anything else is built
        self.backbone = backbone(tuple(input_shape), num_classes, make_neuron)
        if not isinstance(self.backbone, Backbone):
            raise ValueError(
                f"model.backbone must build a spikegrad.models.Backbone, got {type(self.backbone).__name__}"
            )
        self.decoder = decoder(self.time_steps)
        self.loss_fn = loss
        self.pda = PDASettings(**pda) if isinstance(pda, dict) else pda
        if self.pda.weight > 0:
            for layer in self.spiking_layers().values():
                layer.keep_potential = True
        # accuracy = fraction of correctly classified samples (micro average), the number papers report
        accuracy = partial(MulticlassAccuracy, num_classes=num_classes, average="micro")
        self.metrics = torch.nn.ModuleDict({f"{stage}_acc": accuracy() for stage in STAGES})
        # a decoder with adapted per-step weights (TWO) is also scored with uniform weights, for comparison
        self.uniform_decoder = MeanDecoder(self.time_steps) if hasattr(self.decoder, "weights") else None
        if self.uniform_decoder is not None:
            self.metrics.update(
                {f"{stage}_acc_uniform": accuracy() for stage in ("val", "test")}
            )
        self.best_val_acc = 0.0  # val/acc_best: the best validation accuracy so far

    # --- model -------------------------------------------------------------------------------------
    def spiking_layers(self) -> dict[str, SpikingNeuron]:
        """The spiking layers by module name, in forward order."""
        return spiking_layers(self)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Batch -> time-first input ``[T, B, ...]``."""
        if self.encoding == "sequence":
            return x.transpose(0, 1)
        return x.unsqueeze(0).expand(self.time_steps, *x.shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Per-step logits ``[T, B, K]``."""
        return self.backbone(self.encode(x))

    # --- steps ---------------------------------------------------------------------------------------
    def task_loss(self, batch) -> torch.Tensor:
        """The training loss of one batch without regulariser, metrics or logging (for method callbacks)."""
        x, y = batch
        per_step = self(x)
        return self.loss_fn(per_step, self.decoder(per_step), y)

    def _step(self, batch, stage: str) -> torch.Tensor:
        x, y = batch
        per_step = self(x)
        decoded = self.decoder(per_step)
        loss = self.loss_fn(per_step, decoded, y)
        if stage == "train":
            self.decoder.observe(per_step.detach(), y)
            if self.pda.weight > 0:
                term = self.pda_term()
                self._log_pda(term)
                loss = loss + term
        metric = self.metrics[f"{stage}_acc"]
        metric(decoded, y)
        on_step = stage == "train"
        # sync_dist: under DDP the logged loss is the mean over all processes, like the torchmetrics accuracies
        self.log(f"{stage}/loss", loss, on_step=on_step, on_epoch=True, prog_bar=stage != "test", sync_dist=True)
        self.log(f"{stage}/acc", metric, on_step=False, on_epoch=True, prog_bar=True)
        if self.uniform_decoder is not None and stage != "train":
            uniform = self.metrics[f"{stage}_acc_uniform"]
            uniform(self.uniform_decoder(per_step), y)
            self.log(f"{stage}/acc_uniform", uniform, on_step=False, on_epoch=True)
        return loss

    def pda_term(self) -> torch.Tensor:
        """``λ·Σ_l mean(relu(lo - h/θ)² + relu(h/θ - hi)²)`` on the potentials of the last forward (PDA)."""
        kept = [(layer.potential, layer.v_threshold) for layer in self.spiking_layers().values()]
        return self.pda.weight * potential_window_penalty(kept, self.pda.lo, self.pda.hi)

    def _log_pda(self, term: torch.Tensor) -> None:
        self.log("train/pda", term, on_step=True, on_epoch=True, sync_dist=True)
        kept = {name: (layer.potential, layer.v_threshold) for name, layer in named_spiking_layers(self).items()}
        stats = potential_statistics(kept, self.pda.lo, self.pda.hi)
        self.log_dict({f"pda/{k}": v for k, v in stats.items()}, on_step=False, on_epoch=True, sync_dist=True)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch, batch_idx: int) -> None:
        self._step(batch, "test")

    def predict_step(self, batch, batch_idx: int) -> torch.Tensor:
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        return self.decoder(self(x)).argmax(-1)

    def on_train_epoch_start(self) -> None:
        self.decoder.on_train_epoch_start(self.current_epoch)
        step_accuracy = getattr(self.decoder, "last_step_accuracy", None)
        if step_accuracy is not None:
            self.log_dict({f"train/step_acc/t{t}": a for t, a in enumerate(step_accuracy.tolist(), start=1)})

    def on_validation_epoch_end(self) -> None:
        acc = self.trainer.callback_metrics.get("val/acc")
        if acc is not None and not self.trainer.sanity_checking:
            self.best_val_acc = max(self.best_val_acc, float(acc))
            self.log("val/acc_best", self.best_val_acc)  # a metric of the HPARAMS table (spikegrad.hparams)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["best_val_acc"] = self.best_val_acc

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.best_val_acc = checkpoint.get("best_val_acc", 0.0)

    # --- optimisation ----------------------------------------------------------------------------------
    def configure_optimizers(self):
        optimizer = self.optimizer_factory(self.parameters())
        if self.lr_scheduler_factory is None:
            return optimizer
        scheduler = self.lr_scheduler_factory(optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "monitor": "val/loss"}}


def resolve_time_steps(time_steps: int | None, data_time_steps: int | None, encoding: str) -> int:
    """T of the model: the data's for sequence data, ``time_steps`` for direct encoding; one-line errors for a
    missing T or two different ones."""
    if time_steps is not None and time_steps < 1:
        raise ValueError(f"model.time_steps must be >= 1, got {time_steps}")
    if data_time_steps is not None and encoding == "sequence":
        if time_steps is not None and time_steps != data_time_steps:
            raise ValueError(
                f"model.time_steps {time_steps} differs from the data's time_steps {data_time_steps} (sequence data "
                f"brings its own T); valid values: {data_time_steps}, or leave model.time_steps unset"
            )
        return int(data_time_steps)
    if time_steps is None:
        raise ValueError(f"model.time_steps must be set for {encoding} input (the number of steps T), e.g. 4")
    return int(time_steps)
