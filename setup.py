"""The one compiled part of spikegrad, optional: the counter-based Bernoulli masks of MSG on the CPU.

``src/spikegrad/surrogates/_bernoulli.c`` is plain C (no torch headers). ``pip install`` builds it when it finds
a C compiler and Python's headers; without them the build skips it (``optional=True``: setuptools reports the
failed compilation and goes on) and :mod:`spikegrad.surrogates.masks` draws the same masks with torch operations,
more slowly. Everything else is in ``pyproject.toml``. ``-fno-trapping-math`` lets the compiler vectorise the
masked select (nothing in it relies on floating-point traps). On Linux it is built with OpenMP: its soname is
libgomp.so.1 like the libgomp that the PyPI torch wheels ship and load first, so the masks run on torch's own
OpenMP threads (separate threads would compete with torch's workers, which keep spinning for a while after every
parallel operation).
"""

import sys

from setuptools import Extension, setup

openmp = ["-fopenmp"] if sys.platform.startswith("linux") else []

setup(
    ext_modules=[
        Extension(
            "spikegrad.surrogates._bernoulli",
            sources=["src/spikegrad/surrogates/_bernoulli.c"],
            extra_compile_args=["-O3", "-fno-trapping-math", *openmp],
            extra_link_args=openmp,
            optional=True,
        )
    ]
)
