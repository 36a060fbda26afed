"""Spiking layers are named from the backbone's structure, in depth order, the same way in every tag."""

import functools

from spikegrad.layer_names import named_spiking_layers, readable_layer_names, synaptic_layer_names
from spikegrad.models import VGG16, ResNet18, SEWResNet, SpikingConvNet, SpikingMLP
from spikegrad.module import SpikingClassifier
from spikegrad.neurons import LIF, PLIF
from spikegrad.surrogates import ATan


def lif():
    return LIF(ATan())


def test_convnet_layers_are_named_after_the_layer_that_feeds_them():
    net = SpikingConvNet((1, 8, 8), 10, lif, channels=[32, 64], hidden=128)
    assert readable_layer_names(net) == {"1": "conv1.lif", "4": "conv2.lif", "7": "fc1.lif"}
    assert list(synaptic_layer_names(net).values()) == ["conv1", "conv2", "fc1", "fc2"]


def test_classifier_paths_keep_their_prefix_and_the_neuron_class_names_the_suffix():
    model = SpikingClassifier(backbone=functools.partial(SpikingMLP, hidden=[16, 8]), time_steps=2,
                              neuron=functools.partial(PLIF, init_tau=2.0))
    names = readable_layer_names(model)
    assert names == {"backbone.2": "fc1.plif", "backbone.4": "fc2.plif"}
    layers = named_spiking_layers(model)
    assert list(layers) == ["fc1.plif", "fc2.plif"]
    assert layers["fc2.plif"] is model.backbone[4]


def test_residual_blocks_are_named_by_stage_block_and_position():
    names = list(readable_layer_names(ResNet18((3, 32, 32), 10, lif)).values())
    assert names[:3] == ["conv01.lif", "layer1.0.lif1", "layer1.0.lif2"]  # 20 convolutions: two digits
    assert names[-2:] == ["layer4.1.lif1", "layer4.1.lif2"] and len(names) == 17
    sew = readable_layer_names(SEWResNet((3, 32, 32), 10, lif, blocks=[1, 1], widths=[8, 16]))
    assert list(sew.values()) == ["conv1.lif", "layer1.0.lif1", "layer1.0.lif2", "layer2.0.lif1", "layer2.0.lif2",
                                  "layer2.0.lif3"]  # the last: the SEW block's spiking shortcut


def test_names_sort_alphabetically_in_depth_order():
    names = list(readable_layer_names(VGG16((3, 32, 32), 10, lif)).values())
    assert names == [f"conv{k:02d}.lif" for k in range(1, 14)] and names == sorted(names)
