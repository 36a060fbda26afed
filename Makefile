# The two commands of the README: `make demo` and `make test`. Both create .venv and install on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: demo demo-events test lint bench clean reproduce-small constraints

$(STAMP): pyproject.toml setup.py src/spikegrad/surrogates/_bernoulli.c
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,peers]'
	touch $@

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,peers,bench]'
	touch $@

demo: $(STAMP)
	$(BIN)/spikegrad fit --config configs/quickstart.yaml

demo-events: $(STAMP)
	$(BIN)/spikegrad fit --config configs/quickstart_events.yaml

test: $(STAMP)
	$(BIN)/python -m pytest -q --durations=15

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

bench: $(BENCH_STAMP)
	$(BIN)/python benchmarks/bench_neuron_matrix.py
	$(BIN)/python benchmarks/bench_neuron.py
	$(BIN)/python benchmarks/bench_network.py
	$(BIN)/python benchmarks/bench_quickstart.py
	$(BIN)/python benchmarks/bench_msg.py

# CPU-scale reproduction study (docs/reproduction_small.md): every study of configs/studies/ through the sweep
# engine (`spikegrad sweep`, 2 worker processes; a rerun continues where it stopped), each writing its summary to
# logs/reproduce_small/<study>/summary/; then the document's sweep blocks are filled from the summaries.
# STUDIES, e.g. "msg_p_sweep dspike"; WORKERS, e.g. 1.
STUDIES ?= msg_p_sweep ablation_digits ablation_events reset_lr_digits reset_lr_toy dspike psg_pda
WORKERS ?= 2
reproduce-small: $(STAMP)
	status=0; for study in $(STUDIES); do \
	  $(BIN)/spikegrad sweep configs/studies/$$study.yaml --workers $(WORKERS) || status=$$?; done; \
	$(BIN)/python -m spikegrad.sweep.document docs/reproduction_small.md --log_root logs/reproduce_small; exit $$status

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info

# the pins the Dockerfile installs with: the resolved environment without the project itself
constraints: $(STAMP)
	{ echo "# Resolved versions of the environment the tests pass in (CPU/CUDA 13.0 wheels of torch 2.14.1)."; \
	  echo "# Regenerate: make constraints   (pip freeze of .venv without the project itself)"; \
	  $(BIN)/python -m pip freeze --exclude-editable | grep -v -i '^spikegrad=='; } > requirements/constraints.txt
