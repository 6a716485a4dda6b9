# sweeplab: set-up, demo and tests. Every target creates .venv on first use.
#
#   make demo   set up and run one short synthetic implicit-bias run (8-D, p = 4: the
#               baselines differ, so the angle figure tells the story of the study)
#   make test   set up and run the test suite
#   make bench  print the speed figures of benchmarks/ (installs Hydra for the comparison)
#
# PyTorch: TORCH_SPEC is installed first, so pip never swaps in a different build. The
# default is the CPU build; with a GPU, install your CUDA build of torch into .venv first
# (README, "Installing PyTorch") or set TORCH_SPEC.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_SPEC ?= torch==2.13.0
# A local folder of wheels (this machine keeps its CPU torch build there), if present.
WHEELS ?= /opt/wheels
PIP_LOCAL := $(if $(wildcard $(WHEELS)/*.whl),--find-links $(WHEELS),)

.PHONY: setup demo test test-fast bench lint clean

$(BIN)/sweeplab: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install --quiet $(PIP_LOCAL) "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet $(PIP_LOCAL) -e ".[all,dev]"
	@touch $@

setup: $(BIN)/sweeplab

# The demo's last line is its wall time: the run's (from a time stamp its recipe leaves in
# the venv) and make's in all, set-up included (DEMO_START: when make read this file).
NOW := import time; print(time.time())
DEMO_START := $(if $(filter demo,$(MAKECMDGOALS)),$(shell $(PYTHON) -c '$(NOW)'))

demo: setup
	@$(BIN)/python -c '$(NOW)' > $(VENV)/.demo-start
	$(BIN)/sweeplab run implicit-bias --tag demo --input_dim 8 --n_samples 32 --noise 0.5 --p 4 --init_scale 0.5 --epochs 3000
	@run=$$(ls -dt runs_out/*_demo | head -n 1); \
	echo; \
	echo "Next: the commands are in .venv/bin; type 'source .venv/bin/activate' first"; \
	echo "(or prefix each with .venv/bin/)."; \
	echo "  the figures:   ls $$run/figs/   (e.g. xdg-open $$run/figs/angles.png)"; \
	echo "  a grid:        sweeplab grid runs/configs/quick_debug.yaml"; \
	echo "  analyze it:    sweeplab analyze runs_out/*_quick_debug"; \
	echo "  its report:    analysis_results/<grid directory>/report.html"; \
	echo; \
	$(BIN)/python -c "import time; t, t0 = time.time(), float(open('$(VENV)/.demo-start').read()); \
	print(f'make demo: {t - t0:.1f} s wall for the run, {t - $(or $(DEMO_START),t0):.1f} s in all (set-up included)')"

test: setup
	$(BIN)/python -m pytest -q --durations=20

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow"

bench: setup
	$(BIN)/pip install --quiet $(PIP_LOCAL) -e ".[bench]"
	$(BIN)/python benchmarks/bench_startup.py
	$(BIN)/python benchmarks/bench_single_run.py
	$(BIN)/python benchmarks/bench_grid.py
	$(BIN)/python benchmarks/bench_analysis.py
	$(BIN)/python benchmarks/bench_figures.py
	$(BIN)/python benchmarks/bench_batch.py --sample 40
	$(BIN)/python benchmarks/bench_batched_models.py
	$(BIN)/python benchmarks/bench_implicit_bias_paths.py
	$(BIN)/python benchmarks/bench_agent_multiseed.py
	$(BIN)/python benchmarks/bench_logging.py

lint: setup
	$(BIN)/ruff check src tests benchmarks runs

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info src/*.egg-info
