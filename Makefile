# The two commands of the README: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
RUNS ?= runs

.PHONY: demo test lint typecheck unit clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch first: the pinned CPU wheel; any other torch request would pull a CUDA build.
	$(PY) -m pip install -q "numpy>=1.23" "torch==2.13.0"
	$(PY) -m pip install -q -e ".[torch,dev]"
	touch $(STAMP)

demo: $(STAMP)
	# the baseline architecture with the full recipe, then under a proxy task (25 % data, 8x8)
	$(VENV)/bin/proxytask trial --config examples/digits/trial.yaml --root-output-dir $(RUNS)/demo \
	    --job-name full_recipe --architecture examples.digits.search_space:baseline
	$(VENV)/bin/proxytask trial --config examples/digits/trial.yaml --root-output-dir $(RUNS)/demo \
	    --job-name proxy_data25_img8 --architecture examples.digits.search_space:baseline \
	    --trainer-args num_threads=1 train_data_pct=25 image_size=8
	# variance measurement: a workable model, 5 copies (seeds 1..5), CV and smoothness, plot
	$(VENV)/bin/proxytask variance --config examples/digits/variance.yaml \
	    --root-output-dir $(RUNS)/demo --job-name digits
	# model selection: 12 random models, 2 pruned per round, 6 reference models trained fully
	$(VENV)/bin/proxytask select-models --config examples/digits/select.yaml \
	    --root-output-dir $(RUNS)/demo --job-name digits
	# proxy-task search over data % and image size, judged by those reference models
	$(VENV)/bin/proxytask search --config examples/digits/search.yaml \
	    --root-output-dir $(RUNS)/demo --job-name digits \
	    --model-selection-dir "$$(ls -d $(RUNS)/demo/Model_Selection_digits_* | tail -n 1)"

lint: $(STAMP)
	$(PY) -m ruff check src tests examples

typecheck: $(STAMP)
	$(PY) -m mypy

test: lint typecheck
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) $(RUNS) .pytest_cache .mypy_cache .ruff_cache
