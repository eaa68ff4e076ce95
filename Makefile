# Set-up on a fresh machine: a venv with the CPU build of torch first (a bare torch pulls CUDA), then the package.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH := torch==2.13.0

.PHONY: setup test demo ci-project bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH)

setup: $(BIN)/python
	$(BIN)/pip install -q -e ".[test,plot]"

test: setup
	$(BIN)/python -m pytest -q tests

demo: setup
	$(BIN)/python -m spacy project run demo . --vars.size demo

# The same workflow on tiny slices of the same real data (a few minutes); CI runs it.
ci-project: setup
	$(BIN)/python -m spacy project run ci . --vars.size ci

bench: setup
	$(BIN)/python bench/bench_bilm.py

clean:
	rm -rf $(VENV) build dist *.egg-info
