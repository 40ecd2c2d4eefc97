# One-command setup: every target first makes .venv/ (once), then runs with it.
#   make sweep            the LoL mask grid (Table 3), offline on synthetic data
#   make sweep ARGS="--data /data/GenImage --gpus-per-trial 0.25"
#   make sweep SWEEP=gendet_margin_alpha   any script under sweeps/, by name
#   make test             the fast tests (minutes): everything not marked slow
#   make test-all         the whole suite, slow multi-process and cluster tests included (what CI runs)
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# torch/torchvision pinned to the builds the lab machines carry; pyproject.toml keeps lower bounds.
TORCH := torch==2.14.1 torchvision==0.29.1
# The CUDA that pinned torch's PyPI Linux wheel is built for (torch.version.cuda of 2.14.1+cu130), and the
# NVIDIA driver it needs: CUDA 13.x runs on drivers >= 580 (NVIDIA, "CUDA Compatibility: Minor Version
# Compatibility", Table 1). The cluster configs' containers and host images follow these (a test checks).
TORCH_CUDA := 13.0
CUDA_DRIVER_MIN := 580
SWEEP ?= lol_mask_grid
# Test processes (pytest-xdist). --dist loadscope keeps a module's tests in one process, so a module's costly
# fixture (a cluster, a trained stand-in) is built once; JOBS=0 runs the suite in this process alone.
JOBS ?= 2
PYTEST := $(PY) -m pytest -n $(JOBS) --dist loadscope

.PHONY: setup sweep test test-all mlflow-ui clean
setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@# Headless Chromium for the MLflow UI test: Debian's package, installed when missing and we may.
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || \
	  echo "note: install Debian's chromium for the MLflow UI test (apt-get install chromium)"; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

sweep: setup
	$(PY) sweeps/$(SWEEP).py $(ARGS)

test: setup
	$(PYTEST) -m "not slow" $(ARGS)

test-all: setup
	$(PYTEST) $(ARGS)

mlflow-ui: setup
	$(VENV)/bin/mlflow ui --backend-store-uri sqlite:///mlflow.db --port 5000

clean:
	rm -rf aigid_data aigid_results aigid_cache mlflow.db mlartifacts
