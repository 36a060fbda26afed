"""Paper backbones (parameter counts, shapes, a backward pass), the batch-norm forms, and the paper configs."""

from __future__ import annotations

import glob
import importlib
import inspect
import math
import os

import pytest
import torch
import yaml
from jsonargparse import ArgumentParser
from omegaconf import OmegaConf
from torch.utils.data import TensorDataset

from spikegrad import models
from spikegrad.cli import TRAINER_DEFAULTS, SpikegradCLI
from spikegrad.data.base import SpikeDataModule
from spikegrad.models import Backbone
from spikegrad.models.norm import RESIDUAL_ALPHA, SpikingBatchNorm, norm_factory
from spikegrad.module import SpikingClassifier
from spikegrad.neurons import LIF

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAPER_CONFIGS = sorted(glob.glob(os.path.join(REPO_ROOT, "configs", "papers", "*.yaml")))

# (backbone, input shape, classes) -> parameters, each worked out by hand from the layer list in the backbone's
# docstring (conv weights + 2 per BN channel + Linear weights and biases) and, where one exists, equal to the
# usual ANN count: CIFAR ResNet-18 11,173,962 and ResNet-34 21,282,122; torchvision's ResNet-34 21,797,672.
PARAMETER_COUNTS = [
    ("CIFARNet", (3, 32, 32), 10, 45_005_450),
    ("CIFARNet", (3, 32, 32), 100, 45_051_620),
    ("VGGSNN", (2, 48, 48), 10, 9_268_746),
    ("VGG11", (3, 32, 32), 10, 9_228_362),
    ("VGG16", (3, 32, 32), 10, 14_724_042),
    ("ResNet18", (3, 32, 32), 10, 11_173_962),
    ("ResNet18", (2, 48, 48), 10, 11_173_386),
    ("ResNet19", (3, 32, 32), 10, 12_697_994),
    ("ResNet20", (3, 32, 32), 10, 4_327_754),
    ("ResNet34", (3, 32, 32), 10, 21_282_122),
    ("SEWResNet34", (3, 224, 224), 1000, 21_797_672),
]

# the input each backbone is built for (SEW-ResNet-34, an ImageNet network, at 64×64 rather than 224×224)
PAPER_INPUTS = {
    "CIFARNet": (3, 32, 32),
    "VGGSNN": (2, 48, 48),
    "VGG11": (3, 32, 32),
    "VGG16": (3, 32, 32),
    "ResNet18": (2, 48, 48),
    "ResNet19": (3, 32, 32),
    "ResNet20": (3, 32, 32),
    "ResNet34": (3, 32, 32),
    "SEWResNet34": (3, 64, 64),
}


def backbone_of(name: str, input_shape, num_classes: int, neuron, **options) -> Backbone:
    """The backbone class ``name`` of spikegrad.models, built as the classifier builds it."""
    return getattr(models, name)(tuple(input_shape), num_classes, neuron, **options)


# batches of 1-4 samples: one intra-op thread is faster than two, and much faster on a busy machine
pytestmark = pytest.mark.usefixtures("one_thread")


def count_parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("name,shape,classes,expected", PARAMETER_COUNTS)
def test_parameter_count(name, shape, classes, expected):
    with torch.device("meta"):  # no memory, no initialisation: only the shapes
        model = backbone_of(name, shape, classes, LIF)
    assert count_parameters(model) == expected


@pytest.mark.parametrize("norm", ["tbn", "per_step", "tdbn"])
def test_norm_forms_add_no_parameters(norm):
    with torch.device("meta"):
        plain = count_parameters(backbone_of("ResNet19", (3, 32, 32), 10, LIF))
        other = count_parameters(backbone_of("ResNet19", (3, 32, 32), 10, LIF, norm=norm))
    assert other == plain


@pytest.mark.parametrize("name", sorted(PAPER_INPUTS))
def test_forward_shape_and_backward(name):
    torch.manual_seed(0)
    shape, T, B, K = PAPER_INPUTS[name], 2, 1, 5
    model = backbone_of(name, shape, K, LIF)
    x = torch.rand(T, B, *shape, requires_grad=True)
    out = model(x)
    assert out.shape == (T, B, K)
    out.sum().backward()
    first_conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    assert first_conv.weight.grad is not None and first_conv.weight.grad.abs().sum() > 0
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("norm", ["per_step", "tdbn"])
def test_backbone_with_norm_option_runs(norm):
    model = backbone_of("ResNet20", (2, 8, 8), 3, LIF, norm=norm, widths=[8, 16, 16], stem_channels=8)
    out = model(torch.rand(3, 4, 2, 8, 8))
    assert out.shape == (3, 4, 3)
    out.sum().backward()


def test_every_backbone_is_a_backbone_class_with_its_options_in_the_signature():
    for name in ("CIFARNet", "VGGSNN", "ResNet18", "ResNet19", "ResNet20", "ResNet34", "VGG11", "VGG16",
                 "SEWResNet34", "SpikingMLP", "SpikingConvNet", "SpikingVGG", "SpikingResNet", "SEWResNet"):
        cls = getattr(models, name)
        assert issubclass(cls, Backbone) and not inspect.isabstract(cls)
        parameters = list(inspect.signature(cls.__init__).parameters)
        assert parameters[1:4] == ["input_shape", "num_classes", "neuron"], name
        assert not any(inspect.signature(cls.__init__).parameters[p].kind == inspect.Parameter.VAR_KEYWORD
                       for p in parameters), f"{name}: options hidden in **kwargs do not reach --help"
    assert inspect.signature(models.ResNet19.__init__).parameters["hidden"].default == (256,)  # its paper's


def test_bad_settings_are_one_line_errors():
    with pytest.raises(ValueError, match="valid choices: tbn, per_step, tdbn"):
        backbone_of("ResNet18", (3, 32, 32), 10, LIF, norm="layer")
    with pytest.raises(ValueError, match="at least 16x16"):
        backbone_of("VGGSNN", (2, 8, 8), 10, LIF)
    with pytest.raises(ValueError, match="ADD, AND, IAND"):
        backbone_of("SEWResNet34", (3, 16, 16), 10, LIF, connect="OR")


# --- batch-norm forms ---------------------------------------------------------------------------------------
def _shifted_steps(T=3, B=16, C=4):
    """Features whose time steps have different means (step t is offset by 3t)."""
    torch.manual_seed(0)
    return torch.randn(T, B, C, 5, 5) + 3.0 * torch.arange(T).view(T, 1, 1, 1, 1)


def test_bn_through_time_shares_statistics_over_steps():
    y = norm_factory("tbn")(4)(_shifted_steps())
    step_means = y.mean(dim=(1, 3, 4))  # [T, C]
    assert torch.allclose(y.mean(dim=(0, 1, 3, 4)), torch.zeros(4), atol=1e-5)
    assert (step_means[-1] - step_means[0]).min() > 1.0  # the offset between steps survives


def test_per_step_bn_normalises_each_step_and_updates_running_stats_per_step():
    bn = norm_factory("per_step")(4)
    y = bn(_shifted_steps(T=3))
    assert torch.allclose(y.mean(dim=(1, 3, 4)), torch.zeros(3, 4), atol=1e-5)
    assert torch.allclose(y.var(dim=(1, 3, 4), unbiased=False), torch.ones(3, 4), atol=1e-3)
    assert int(bn.bn.num_batches_tracked) == 3
    bn.eval()  # the running estimate is shared by all steps
    x = torch.randn(2, 2, 4, 5, 5)
    assert torch.allclose(bn(x)[1], bn(x[1:])[0])


def test_tdbn_scales_the_normalised_value_by_alpha_threshold():
    theta = 0.5
    bn = norm_factory("tdbn", v_threshold=theta)(4, alpha=RESIDUAL_ALPHA)
    y = bn(_shifted_steps())
    assert torch.allclose(y.std(dim=(0, 1, 3, 4), unbiased=False), torch.full((4,), theta * RESIDUAL_ALPHA), atol=1e-3)
    assert count_parameters(bn) == 2 * 4
    y.sum().backward()
    assert bn.weight.grad is not None and bn.bias.grad is not None


def test_resnet_tdbn_uses_reduced_alpha_before_the_residual_add():
    model = backbone_of("ResNet20", (3, 8, 8), 10, lambda: LIF(v_threshold=0.5), norm="tdbn")
    block = model[1][0]
    assert block.conv1[1].scale == pytest.approx(0.5)
    assert block.conv2[1].scale == pytest.approx(0.5 / math.sqrt(2))
    downsampling = model[2][0]
    assert downsampling.shortcut[1].scale == pytest.approx(0.5 / math.sqrt(2))


def test_norms_survive_sync_batchnorm_conversion():
    model = backbone_of("ResNet20", (3, 8, 8), 10, LIF, norm="per_step", widths=[8, 8, 8], stem_channels=8)
    converted = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    norms = [m for m in converted.modules() if isinstance(m, SpikingBatchNorm)]
    assert norms and all(isinstance(m.bn, torch.nn.SyncBatchNorm) and m.per_step for m in norms)


@pytest.mark.parametrize("connect", ["AND", "IAND"])
def test_sew_connect_functions(connect):
    model = backbone_of("SEWResNet34", (3, 16, 16), 4, LIF, connect=connect, blocks=[1, 1], widths=[8, 16])
    out = model(torch.rand(2, 2, 3, 16, 16))
    assert out.shape == (2, 2, 4)


# --- paper configs ----------------------------------------------------------------------------------------
class FabricatedDataModule(SpikeDataModule):
    """A few random samples with a dataset's class count and a small input, for config smoke tests."""

    def __init__(
        self,
        num_classes: int = 10,
        input_shape: tuple[int, ...] = (3, 16, 16),
        encoding: str = "direct",
        time_steps: int = 2,
        samples: int = 4,
        batch_size: int = 2,
        num_workers: int = 0,
    ) -> None:
        super().__init__(batch_size, num_workers)
        self.num_classes = num_classes
        self.input_shape = tuple(input_shape)
        self.encoding = encoding
        self.time_steps = time_steps
        self.samples = samples

    def setup(self, stage: str | None = None) -> None:
        g = torch.Generator().manual_seed(0)
        if self.encoding == "sequence":
            x = (torch.rand(self.samples, self.time_steps, *self.input_shape, generator=g) > 0.8).float()
        else:
            x = torch.rand(self.samples, *self.input_shape, generator=g)
        y = torch.arange(self.samples) % self.num_classes
        self.train_set = self.val_set = self.test_set = TensorDataset(x, y)


# data class of a paper config -> (classes, small input, encoding) of its fabricated stand-in
FABRICATED = {
    "CIFAR10DataModule": (10, [3, 8, 8], "direct"),
    "CIFAR100DataModule": (100, [3, 8, 8], "direct"),
    "CIFAR10DVSDataModule": (10, [2, 16, 16], "sequence"),
    "DVSGestureDataModule": (11, [2, 16, 16], "sequence"),
    "NMNISTDataModule": (10, [2, 16, 16], "sequence"),
    "EventDigitsDataModule": (10, [2, 8, 8], "sequence"),
    "DigitsDataModule": (10, [1, 8, 8], "direct"),
    "SpikePatternDataModule": (8, [40], "sequence"),
}


def _load(path: str) -> dict:
    with open(path) as f:
        return yaml.safe_load(f)


def _with_fabricated_data(config: dict, time_steps: int) -> dict:
    data_class = config["data"]["class_path"].rsplit(".", 1)[-1]
    classes, shape, encoding = FABRICATED.get(data_class, (10, [3, 8, 8], "direct"))
    config = dict(config)
    config["data"] = {
        "class_path": f"{__name__}.FabricatedDataModule",
        "init_args": {"num_classes": classes, "input_shape": shape, "encoding": encoding, "time_steps": time_steps},
    }
    # the searches that probe the model many times are shrunk: the Dspike FDG to 4 coordinates; PSG (one
    # look-ahead per layer and candidate) to its own shape's 3 candidates, on a ResNet of one block per stage
    for callback in config.get("trainer", {}).get("callbacks") or []:
        args = callback.get("init_args") or {}
        if callback["class_path"].endswith("DspikeTemperatureSearch"):
            args["num_coordinates"] = 4
        if callback["class_path"].endswith("ParametricSurrogate"):
            args.pop("shapes", None)
            model = config["model"] = dict(config["model"])
            backbone = model["backbone"]["class_path"]
            if backbone.startswith("ResNet"):
                blocks = {"ResNet18": 4, "ResNet34": 4, "ResNet19": 3, "ResNet20": 3}[backbone]
                model["backbone"]["init_args"] = {**(model["backbone"].get("init_args") or {}), "blocks": [1] * blocks}
    return config


def _smoke_args(path: str, sequence: bool) -> list[str]:
    time_steps = [] if sequence else ["--model.time_steps", "2"]  # sequence data: T comes from the data (linked)
    return [
        "--config", path, *time_steps, "--trainer.fast_dev_run", "1", "--trainer.accelerator", "cpu",
        "--trainer.devices", "1", "--trainer.strategy", "auto", "--trainer.num_nodes", "1",
        "--trainer.sync_batchnorm", "false", "--trainer.precision", "32-true", "--trainer.benchmark", "false",
        "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
    ]


def test_there_are_paper_configs():
    names = {os.path.basename(p) for p in PAPER_CONFIGS}
    assert {"msg_cifar100_cifarnet_t4.yaml", "dspike_cifar10_resnet20_t4.yaml", "reset_gradient_cifar10.yaml"} <= names


@pytest.mark.slow  # a few seconds each
@pytest.mark.parametrize("path", PAPER_CONFIGS, ids=os.path.basename)
def test_paper_config_parses_and_runs_one_step(path, tmp_path, monkeypatch):
    """The config as written (backbone, neuron, method, callbacks, optimiser, schedule) with fabricated data,
    T = 2 and the trainer moved to one CPU process in float32: parse, one training step, validation and test.

    The CLI is the project's own class with the settings of ``spikegrad.cli.main``, without subcommands (building
    the four subcommand parsers would cost more than the run itself)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SPIKEGRAD_TRUSTED_MODULES", __name__)  # the fabricated DataModule's module
    patched = tmp_path / os.path.basename(path)
    config = _with_fabricated_data(_load(path), time_steps=2)
    patched.write_text(yaml.safe_dump(config))
    sequence = config["data"]["init_args"]["encoding"] == "sequence"
    cli = SpikegradCLI(
        SpikingClassifier,
        SpikeDataModule,
        subclass_mode_data=True,
        parser_kwargs={"parser_mode": "omegaconf+"},
        trainer_defaults=TRAINER_DEFAULTS,
        seed_everything_default=0,
        auto_configure_optimizers=False,
        run=False,
        args=_smoke_args(str(patched), sequence),
    )
    assert cli.model.hparams.backbone["class_path"].endswith(_load(path)["model"]["backbone"]["class_path"])
    assert cli.model.time_steps == 2 and cli.model.decoder.time_steps == 2
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    assert cli.trainer.global_step == 1
    (results,) = cli.trainer.test(cli.model, datamodule=cli.datamodule, verbose=False)
    assert math.isfinite(results["test/loss"]) and 0.0 <= results["test/acc"] <= 1.0


@pytest.mark.parametrize("path", PAPER_CONFIGS, ids=os.path.basename)
def test_paper_config_data_section_fits_its_datamodule(path):
    """The real DataModule accepts the config's data arguments, by name and type (nothing is downloaded)."""
    config = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    module_name, class_name = config["data"]["class_path"].rsplit(".", 1)
    cls = getattr(importlib.import_module(module_name), class_name, None)
    assert cls is not None, f"{class_name} is not in {module_name}"
    parser = ArgumentParser(exit_on_error=False)
    parser.add_subclass_arguments(SpikeDataModule, "data")
    parsed = parser.parse_object({"data": config["data"]})
    data = parser.instantiate_classes(parsed).data
    assert isinstance(data, cls)
    if data.encoding == "sequence":  # event frames bring their T; the CLI links it into the model (test_cli.py)
        assert "time_steps" not in config["model"] and data.time_steps == config["data"]["init_args"]["time_steps"]


def test_every_paper_config_is_in_the_reproduction_table():
    with open(os.path.join(REPO_ROOT, "docs", "reproduction.md")) as f:
        text = f.read()
    missing = [os.path.basename(p) for p in PAPER_CONFIGS if os.path.basename(p) not in text]
    assert not missing, f"docs/reproduction.md does not list {missing}"
