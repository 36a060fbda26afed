# ---
# jupytext:
#   formats: py:percent
#   text_representation: {extension: .py, format_name: percent}
# ---
# %% [markdown]
# # spikegrad in ten minutes
#
# Train a spiking conv net on the bundled 8×8 digits, look at what its layers do (firing rates, membrane
# potentials), then switch the surrogate gradient and masked surrogate gradients (MSG) and compare.
# Everything runs on a CPU in about a minute. Open it as a notebook with `jupytext --to notebook
# docs/tutorial.py`, or run it as a script: `python docs/tutorial.py` (the tests run it that way).

# %%
import functools

import lightning as L
import torch

from spikegrad.data import DigitsDataModule
from spikegrad.layer_names import named_spiking_layers
from spikegrad.models import SpikingConvNet
from spikegrad.module import SpikingClassifier
from spikegrad.neurons import LIF
from spikegrad.noise import quiet_known_noise
from spikegrad.surrogates import ATan, Triangle

quiet_known_noise()  # Lightning's advert and a known deprecation warning, as the spikegrad command does
EPOCHS = 4  # the quickstart uses 15; 4 is enough to see the differences


def train(surrogate, seed: int = 0):
    """A quickstart-sized model with ``surrogate``: trained, tested; returns the model and its test accuracy."""
    L.seed_everything(seed, workers=True)
    model = SpikingClassifier(
        backbone=functools.partial(SpikingConvNet, channels=[16, 32], hidden=64),
        neuron=functools.partial(LIF, tau=2.0, v_threshold=1.0),
        surrogate=surrogate,
        time_steps=4,
        optimizer=functools.partial(torch.optim.AdamW, lr=3e-3, weight_decay=1e-4),
    )
    data = DigitsDataModule(batch_size=64)
    trainer = L.Trainer(max_epochs=EPOCHS, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, deterministic=True)
    trainer.fit(model, datamodule=data)
    accuracy = trainer.test(model, datamodule=data, verbose=False)[0]["test/acc"]
    return model, data, accuracy


# %% [markdown]
# ## 1. Train with the arctan surrogate

# %%
model, data, acc_atan = train(ATan(alpha=2.0))
print(f"ATan: test accuracy {acc_atan:.3f}")

# %% [markdown]
# ## 2. Firing rates and membrane potentials per layer
#
# Every spiking layer keeps its spikes and pre-spike potentials of one call while recording is requested
# (the switch the analysis callbacks use). Layers are named from the network's structure.

# %%
layers = named_spiking_layers(model)
x, y = next(iter(data.test_dataloader()))
for layer in layers.values():
    layer.request_recording("tutorial")
model.eval()
with torch.no_grad():
    model(x)
for name, layer in layers.items():
    spikes, h = layer.recorded["spikes"], layer.recorded["potential"]
    u = h / layer.threshold_value()
    print(f"{name:10s} firing rate {spikes.mean():.3f}   h/θ: mean {u.mean():+.2f}, "
          f"{(u > 1).float().mean():.1%} above threshold, {(u < 0).float().mean():.1%} below 0")
for layer in layers.values():
    layer.release_recording("tutorial")

# %% [markdown]
# A histogram of the potentials of the first layer (as the `PotentialMonitor` draws them in TensorBoard):

# %%
from spikegrad.plotting import potential_figure  # noqa: E402

for layer in layers.values():
    layer.request_recording("tutorial")
with torch.no_grad():
    model(x)
first_name, first = next(iter(layers.items()))
u = (first.recorded["potential"] / first.threshold_value()).flatten().clamp(-2, 4).numpy()
for layer in layers.values():
    layer.release_recording("tutorial")
import numpy as np  # noqa: E402

counts, edges = np.histogram(u, bins=60, range=(-2, 4))
figure = potential_figure({first_name: (edges, counts)}, {first_name: 2 / (np.pi * 2.0)}, "h/θ of " + first_name)
figure.savefig("tutorial_potential.png")  # in a notebook, `figure` alone shows it

# %% [markdown]
# ## 3. Another surrogate, and masked surrogate gradients (MSG)
#
# The surrogate is one setting; MSG is its option `mask_p` (the probability of dropping an entry of ∂s/∂h).

# %%
_, _, acc_triangle = train(Triangle(alpha=1.0))
_, _, acc_msg = train(ATan(alpha=2.0, mask_p=0.5))
results = {"ATan": acc_atan, "Triangle": acc_triangle, "ATan + MSG (p = 0.5)": acc_msg}
for label, accuracy in results.items():
    print(f"{label:22s} test accuracy {accuracy:.3f}")

# %% [markdown]
# One seed and four epochs say little about which is better: `spikegrad fit` with the configs in
# `configs/ablations/` and `spikegrad report` compare methods over full runs.
