"""Paper backbones (layer lists and parameter counts against their sources, shapes, a backward pass), the batch-norm
forms, and the paper configs."""

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
from spikegrad.neurons import LIF, SpikingNeuron

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAPER_CONFIGS = sorted(glob.glob(os.path.join(REPO_ROOT, "configs", "papers", "*.yaml")))

# --- the source networks, transcribed from their code or paper independently of spikegrad's builders ---------
# A layer list holds, in the order a forward pass runs them: ("conv", c_in, c_out, kernel, stride, padding, bias),
# ("bn", channels), ("spike",) (a spiking layer: the ReLU of an ANN listing), ("avgpool" | "maxpool", kernel,
# stride, padding), ("gap",) (global average pooling) and ("linear", n_in, n_out, bias).


def conv_bn_spike(c_in, c_out, kernel=3, stride=1, bias=False):
    return [("conv", c_in, c_out, kernel, stride, kernel // 2, bias), ("bn", c_out), ("spike",)]


def plain_stack(c_in, layers):
    """Conv3x3-BN-spike per number, 2x2 average pooling per "P" (a VGG-style list)."""
    out = []
    for item in layers:
        if item == "P":
            out.append(("avgpool", 2, 2, 0))
        else:
            out += conv_bn_spike(c_in, item)
            c_in = item
    return out


def msg_cifarconvnet(k):
    """Brain-Cog-Lab/msg, model/convnet.py:30-73 (CIFARConvNet), fc replaced by Linear(1024, K) (main.py:336)."""
    return plain_stack(3, [256, 256, "P", 256, 256, "P", 512, 512, "P", 1024, 1024]) + [
        ("gap",), ("linear", 1024, k, True)]


def msg_vggnet(k):
    """Brain-Cog-Lab/msg, model/convnet.py:124-165 (VGGNet) at 2×48×48: first conv given 2 input channels without
    bias (snn_model.py:55-63), fc Linear(512·9, K) (main.py:342). TET's VGGSNN is the same list with conv biases."""
    return plain_stack(2, [64, 128, "P", 256, 256, "P", 512, 512, "P", 512, 512, "P"]) + [
        ("linear", 512 * 9, k, True)]


def basic_block(c_in, c_out, stride):
    """Shortcut added before the last spiking layer, BN(Conv1x1) where the shape changes (MSG resnet.py:12-37,
    TET resnet_models.py:20-57, SNN_Calibration models/CIFAR/models/resnet.py BasicBlock)."""
    layers = conv_bn_spike(c_in, c_out, 3, stride)
    layers += [("conv", c_out, c_out, 3, 1, 1, False), ("bn", c_out)]
    if stride != 1 or c_in != c_out:
        layers += [("conv", c_in, c_out, 1, stride, 0, False), ("bn", c_out)]
    return layers + [("spike",)]


def msg_resnet18(c_in, k):
    """Brain-Cog-Lab/msg, model/resnet.py:4, 12-77 with pool='avg' (main.py:347): stride 2 and a projection
    wherever a block changes the width (resnet.py:15, 24-27); fc Linear(512, K) (main.py:348)."""
    arch = ((2, 64, 64), (2, 64, 128), (2, 128, 256), (2, 256, 512))  # resnet.py:4
    layers = conv_bn_spike(c_in, 64, 7, 2) + [("avgpool", 3, 2, 1)]
    for n, first_in, width in arch:
        for j in range(n):
            i = first_in if j == 0 else width
            layers += basic_block(i, width, 2 if i != width else 1)
    return layers + [("gap",), ("linear", 512, k, True)]


def staged_resnet(c_in, k, stem, blocks, widths, hidden=()):
    """torchvision-style stages (stride 2 at the first block of every stage after the first), as He et al., CVPR
    2016, Table 1; ``stem`` is the stem's layer list, whose last conv gives the width the stages start from."""
    layers, c = list(stem), [layer for layer in stem if layer[0] == "conv"][-1][2]
    for stage, (n, width) in enumerate(zip(blocks, widths, strict=True)):
        for j in range(n):
            layers += basic_block(c, width, 2 if stage > 0 and j == 0 else 1)
            c = width
    layers.append(("gap",))
    for h in hidden:
        layers += [("linear", c, h, True), ("spike",)]
        c = h
    return layers + [("linear", c, k, True)]


def sew_resnet34(k):
    """Fang et al., NeurIPS 2021, Fig. 1(c): ImageNet stem with max pooling, SEW blocks (both branches end in a
    spiking layer; the projection is Conv1x1-BN-spike), ResNet-34's stages."""
    layers, c = conv_bn_spike(3, 64, 7, 2) + [("maxpool", 3, 2, 1)], 64
    for stage, (n, width) in enumerate(zip((3, 4, 6, 3), (64, 128, 256, 512), strict=True)):
        for j in range(n):
            stride = 2 if stage > 0 and j == 0 else 1
            layers += conv_bn_spike(c, width, 3, stride) + conv_bn_spike(width, width)
            if stride != 1 or c != width:
                layers += conv_bn_spike(c, width, 1, stride)
            c = width
    return layers + [("gap",), ("linear", 512, k, True)]


def vgg_cifar(cfg, k):
    """Simonyan and Zisserman, ICLR 2015, Table 1 (A: VGG-11, D: VGG-16), CIFAR form: BN, average pooling, one
    Linear head on the 512×1×1 features of a 32×32 input."""
    return plain_stack(3, cfg) + [("linear", 512, k, True)]


CIFAR_STEM = conv_bn_spike(3, 64)
# (backbone, options, input shape, classes, the source's layer list, its parameter count as documented)
SOURCES = [
    ("CIFARConvNet", {}, (3, 32, 32), 10, msg_cifarconvnet(10), 19_489_546),
    ("CIFARConvNet", {}, (3, 32, 32), 100, msg_cifarconvnet(100), 19_581_796),
    ("VGGSNN", {}, (2, 48, 48), 10, msg_vggnet(10), 9_268_746),
    ("ResNet18", {"stem": "imagenet", "stem_pool": "avg"}, (2, 48, 48), 10, msg_resnet18(2, 10), 11_178_506),
    ("ResNet18", {}, (3, 32, 32), 10,
     staged_resnet(3, 10, CIFAR_STEM, (2, 2, 2, 2), (64, 128, 256, 512)), 11_173_962),
    ("ResNet18", {}, (2, 48, 48), 10,
     staged_resnet(2, 10, conv_bn_spike(2, 64), (2, 2, 2, 2), (64, 128, 256, 512)), 11_173_386),
    # the first author's ResNet-20 (yhhhli/SNN_Calibration, models/CIFAR/models/resnet.py:60-68, 153-154)
    ("ResNet20", {}, (3, 32, 32), 10, staged_resnet(3, 10, CIFAR_STEM, (3, 3, 3), (64, 128, 256)), 4_327_754),
    # tdBN's table (Zheng et al., AAAI 2021, Table 1): 128C3 stem, FC256 (no public code)
    ("ResNet19", {}, (3, 32, 32), 10,
     staged_resnet(3, 10, conv_bn_spike(3, 128), (3, 3, 2), (128, 256, 512), (256,)), 12_697_994),
    # TET's ResNet-19 (resnet_models.py:68-92, 166-175): the same with a 64-channel stem
    ("ResNet19", {"stem_channels": 64}, (3, 32, 32), 10,
     staged_resnet(3, 10, CIFAR_STEM, (3, 3, 2), (128, 256, 512), (256,)), 12_630_858),
    ("ResNet34", {}, (3, 32, 32), 10,
     staged_resnet(3, 10, CIFAR_STEM, (3, 4, 6, 3), (64, 128, 256, 512)), 21_282_122),
    ("SEWResNet34", {}, (3, 224, 224), 1000, sew_resnet34(1000), 21_797_672),
    ("VGG11", {}, (3, 32, 32), 10, vgg_cifar([64, "P", 128, "P", 256, 256, "P", 512, 512, "P", 512, 512, "P"], 10),
     9_228_362),
    ("VGG16", {}, (3, 32, 32), 10, vgg_cifar([64, 64, "P", 128, 128, "P", 256, 256, 256, "P", 512, 512, 512, "P",
                                               512, 512, 512, "P"], 10), 14_724_042),
]
SOURCE_IDS = [f"{name}-{'-'.join(f'{k}={v}' for k, v in options.items())}-{shape[1]}px-{k}"
              for name, options, shape, k, _, _ in SOURCES]


def source_parameters(layers) -> int:
    """The parameter count of a layer list: conv weights (+ bias), 2 per BN channel, Linear weights + bias."""
    total = 0
    for layer in layers:
        if layer[0] == "conv":
            _, c_in, c_out, kernel, _, _, bias = layer
            total += c_in * c_out * kernel * kernel + (c_out if bias else 0)
        elif layer[0] == "bn":
            total += 2 * layer[1]
        elif layer[0] == "linear":
            _, n_in, n_out, bias = layer
            total += n_in * n_out + (n_out if bias else 0)
    return total


def layer_list(model: torch.nn.Module, x: torch.Tensor) -> list[tuple]:
    """The layers a forward pass of ``model`` runs, in order, in the notation of the source lists."""
    def describe(m):
        if isinstance(m, torch.nn.Conv2d):
            return ("conv", m.in_channels, m.out_channels, m.kernel_size[0], m.stride[0], m.padding[0],
                    m.bias is not None)
        if isinstance(m, SpikingBatchNorm):
            return ("bn", m.bn.num_features)
        if isinstance(m, SpikingNeuron):
            return ("spike",)
        if isinstance(m, (torch.nn.AvgPool2d, torch.nn.MaxPool2d)):
            kind = "avgpool" if isinstance(m, torch.nn.AvgPool2d) else "maxpool"
            if isinstance(m, torch.nn.AvgPool2d):
                assert m.count_include_pad and not m.ceil_mode  # torch's defaults, as every source uses
            return (kind, m.kernel_size, m.stride, m.padding)
        if isinstance(m, torch.nn.AdaptiveAvgPool2d):
            return ("gap",)
        if isinstance(m, torch.nn.Linear):
            return ("linear", m.in_features, m.out_features, m.bias is not None)
        return None

    seen: list[tuple] = []
    hooks = [m.register_forward_hook(lambda m, i, o: seen.append(describe(m)))
             for m in model.modules() if describe(m) is not None]
    model.eval()  # one sample: BN normalises with its running statistics
    with torch.no_grad():
        model(x)
    for hook in hooks:
        hook.remove()
    return seen


# the input each backbone is built for (SEW-ResNet-34, an ImageNet network, at 64×64 rather than 224×224)
PAPER_INPUTS = {
    "CIFARConvNet": (3, 32, 32),
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


@pytest.mark.parametrize("name,options,shape,classes,source,expected", SOURCES, ids=SOURCE_IDS)
def test_parameter_count_equals_the_source_networks(name, options, shape, classes, source, expected):
    assert source_parameters(source) == expected  # the source's count, from its layer list alone
    with torch.device("meta"):  # no memory, no initialisation: only the shapes
        model = backbone_of(name, shape, classes, LIF, **options)
    assert count_parameters(model) == expected


# small inputs where the list does not depend on the size (a global pool before the head)
LAYER_LIST_INPUTS = {"CIFARConvNet": (3, 8, 8), "ResNet20": (3, 8, 8), "ResNet19": (3, 8, 8), "ResNet34": (3, 8, 8),
                     "SEWResNet34": (3, 16, 16)}


@pytest.mark.parametrize("name,options,shape,classes,source,expected", SOURCES, ids=SOURCE_IDS)
def test_layer_list_equals_the_source_networks(name, options, shape, classes, source, expected):
    """Every convolution (channels, kernel, stride, padding, bias), BN, spiking layer, pooling and Linear layer of
    the backbone, in the order the forward pass runs them, equals the source's list."""
    shape = LAYER_LIST_INPUTS.get(name, shape)
    torch.manual_seed(0)
    model = backbone_of(name, shape, classes, LIF, **options)
    assert layer_list(model, torch.rand(1, 1, *shape)) == source


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
    for name in ("CIFARConvNet", "VGGSNN", "ResNet18", "ResNet19", "ResNet20", "ResNet34", "VGG11", "VGG16",
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
    with pytest.raises(ValueError, match="resnet18: unknown stem 'tiny'; valid choices: cifar, imagenet"):
        backbone_of("ResNet18", (3, 32, 32), 10, LIF, stem="tiny")
    with pytest.raises(ValueError, match="resnet18: unknown stem_pool 'sum'; valid choices: avg, max"):
        backbone_of("ResNet18", (3, 32, 32), 10, LIF, stem="imagenet", stem_pool="sum")
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
