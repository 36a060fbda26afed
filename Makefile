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
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks studies

bench: $(BENCH_STAMP)
	$(BIN)/python benchmarks/bench_neuron_matrix.py
	$(BIN)/python benchmarks/bench_neuron.py
	$(BIN)/python benchmarks/bench_network.py
	$(BIN)/python benchmarks/bench_quickstart.py
	$(BIN)/python benchmarks/bench_msg.py

# CPU-scale reproduction study (docs/reproduction_small.md): trains every run in one process, then writes the
# tables and plots; about 20 min on 2 CPU cores (5 seeds). STUDY_ARGS, e.g. "--only msg_p_sweep" or "--report-only".
reproduce-small: $(STAMP)
	$(BIN)/python -m studies.reproduce_small $(STUDY_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info

# the pins the Dockerfile installs with: the resolved environment without the project itself
constraints: $(STAMP)
	{ echo "# Resolved versions of the environment the tests pass in (CPU/CUDA 13.0 wheels of torch 2.14.1)."; \
	  echo "# Regenerate: make constraints   (pip freeze of .venv without the project itself)"; \
	  $(BIN)/python -m pip freeze --exclude-editable | grep -v -i '^spikegrad=='; } > requirements/constraints.txt
