# spikegrad on the official PyTorch CUDA runtime image (torch 2.14.1, CUDA 13.0, cuDNN 9; the same torch as
# requirements/constraints.txt). Build and run: see README.md, section "Docker".
ARG BASE_IMAGE=pytorch/pytorch:2.14.1-cuda13.0-cudnn9-runtime
FROM ${BASE_IMAGE}

# the commit the image was built from, recorded in each run's manifest.json (there is no .git in the image)
ARG GIT_COMMIT=unknown
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MPLCONFIGDIR=/tmp/matplotlib \
    SPIKEGRAD_GIT_COMMIT=${GIT_COMMIT}

# a C compiler: pip builds spikegrad's one optional C extension (the fast MSG masks,
# src/spikegrad/surrogates/_bernoulli.c), and torch.compile (the neuron's backend "compile") generates C++ on the
# CPU and needs one for Triton on CUDA.
# The distribution's current compiler is what is wanted here, so its version is not pinned.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc g++ libc6-dev \
    && rm -rf /var/lib/apt/lists/*

# the project, with every dependency pinned to the resolved versions kept in the repository
WORKDIR /opt/spikegrad
COPY requirements/constraints.txt requirements/constraints.txt
COPY pyproject.toml setup.py README.md ./
COPY src ./src
RUN pip install --no-cache-dir -c requirements/constraints.txt /opt/spikegrad

# a non-root user; data/ (downloads) and logs/ (TensorBoard runs, checkpoints) are volumes
RUN useradd --create-home --uid 10001 spikegrad \
    && mkdir -p /workspace/data /workspace/logs \
    && chown -R spikegrad:spikegrad /workspace
COPY --chown=spikegrad:spikegrad configs /workspace/configs
USER 10001:10001
WORKDIR /workspace
VOLUME ["/workspace/data", "/workspace/logs"]

ENTRYPOINT ["spikegrad"]
CMD ["--help"]
