# syntax=docker/dockerfile:1
# spikegrad on the official PyTorch CUDA runtime image (torch 2.14.1, CUDA 13.0, cuDNN 9, Python 3.12; the same
# torch as requirements/constraints.txt). Build and run: see README.md, section "Docker".
ARG BASE_IMAGE=pytorch/pytorch:2.14.1-cuda13.0-cudnn9-runtime

# --- builder: compilers and headers, a virtual environment with the dependencies, then the project ---------------
FROM ${BASE_IMAGE} AS builder
# gcc and the Python headers build expelliarmus (no wheel for Python 3.12) and spikegrad's optional C extension
# (src/spikegrad/surrogates/_bernoulli.c); the distribution's current versions are what is wanted here.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc g++ libc6-dev python3-dev python3-venv \
    && rm -rf /var/lib/apt/lists/*
# the image's Python is externally managed (PEP 668): a virtual environment that also sees the image's torch
RUN python3 -m venv --system-site-packages /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /opt/spikegrad
# dependencies first (this layer changes only with the pins), then the source
COPY requirements/runtime-py312.txt requirements/runtime-py312.txt
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install -r requirements/runtime-py312.txt
COPY pyproject.toml setup.py README.md ./
COPY src ./src
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install --no-deps /opt/spikegrad

# --- runtime: the base image, the virtual environment, a non-root user ---------------------------------------------
FROM ${BASE_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MPLCONFIGDIR=/tmp/matplotlib
COPY --from=builder /opt/venv /opt/venv
# the neuron option `backend: compile` (torch.compile) generates C++ at run time and needs a compiler and the
# Python headers: --build-arg WITH_COMPILER=true adds them (about 250 MB)
ARG WITH_COMPILER=false
# hadolint ignore=DL3008
RUN if [ "$WITH_COMPILER" = "true" ]; then \
        apt-get update \
        && apt-get install -y --no-install-recommends gcc g++ libc6-dev python3-dev \
        && rm -rf /var/lib/apt/lists/*; \
    fi
# data/ (downloads) and logs/ (TensorBoard runs, checkpoints) are volumes
RUN useradd --create-home --uid 10001 spikegrad \
    && mkdir -p /workspace/data /workspace/logs \
    && chown -R spikegrad:spikegrad /workspace
COPY --chown=spikegrad:spikegrad configs /workspace/configs
USER 10001:10001
WORKDIR /workspace
VOLUME ["/workspace/data", "/workspace/logs"]
# last, so that a new commit rebuilds nothing above: recorded in each run's manifest.json (no .git in the image)
ARG GIT_COMMIT=unknown
ENV SPIKEGRAD_GIT_COMMIT=${GIT_COMMIT}

ENTRYPOINT ["spikegrad"]
CMD ["--help"]
