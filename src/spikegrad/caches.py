"""Where the tools spikegrad uses keep their caches: one documented folder instead of the home and temp folders.

Left alone, matplotlib creates ``~/.config/matplotlib`` and writes its font list to ``~/.cache/matplotlib``, and
torch.compile's inductor creates ``$TMPDIR/torchinductor_<user>`` (Triton: ``~/.triton``) as soon as it is
imported. The ``spikegrad`` command points them all into ``$SPIKEGRAD_CACHE_DIR`` (default
``$XDG_CACHE_HOME/spikegrad``, i.e. ``~/.cache/spikegrad``): ``matplotlib/``, ``torchinductor/``, ``triton/``.
The caches are kept between runs on purpose: the font list takes a second to build and compiled kernels
(``model.neuron.backend: compile``) seconds per setting. A variable the user has set already wins.
"""

from __future__ import annotations

import os

CACHE_DIR_ENV = "SPIKEGRAD_CACHE_DIR"
TOOL_CACHE_VARIABLES = {
    "MPLCONFIGDIR": "matplotlib",
    "TORCHINDUCTOR_CACHE_DIR": "torchinductor",
    "TRITON_CACHE_DIR": "triton",
}


def cache_dir(environ: dict[str, str] | None = None) -> str:
    """``$SPIKEGRAD_CACHE_DIR``, else ``$XDG_CACHE_HOME/spikegrad``, else ``~/.cache/spikegrad``."""
    env = os.environ if environ is None else environ
    if env.get(CACHE_DIR_ENV):
        return os.path.abspath(env[CACHE_DIR_ENV])
    base = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "spikegrad")


def redirect_tool_caches(environ: dict[str, str] | None = None) -> None:
    """Sets the tools' cache variables to folders of :func:`cache_dir` where they are not set. Must run before
    matplotlib is imported (it reads ``MPLCONFIGDIR`` once). When that folder cannot be created or written (a
    container user without a home folder) the tools keep their own defaults and fallbacks."""
    env = os.environ if environ is None else environ
    root = cache_dir(env)
    try:
        os.makedirs(root, exist_ok=True)
    except OSError:
        return
    if not os.access(root, os.W_OK | os.X_OK):
        return
    for variable, folder in TOOL_CACHE_VARIABLES.items():
        env.setdefault(variable, os.path.join(root, folder))
