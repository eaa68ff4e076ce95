# Set-up on a fresh machine: a venv with the CPU build of torch first (a bare torch pulls CUDA), then the package.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH := torch==2.13.0
# The GPU machine's interpreter (no .venv there: torch + CuPy come with its image).
GPU_PY ?= python3
GPU_CHECK_ARGS ?=
GPU_DEMO_ARGS ?=

.PHONY: setup test demo ci-project project-docs bench clean gpu-wheels gpu-data gpu-check gpu-demo-data gpu-demo

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH)

setup: $(BIN)/python
	$(BIN)/pip install -q -e ".[test,project]"

# The suite, then the tests of the optional extras with them installed (the spacy-transformers bridge, and
# spacy-curated-transformers beside elmo). In that order because once
# spacy-transformers is installed every spaCy process imports it and transformers (~1.3 s per start; the suite
# and the ci workflow start ~75), and the rest of the suite does not need it.
test: setup
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m mypy spacy_elmo
	$(BIN)/python -m pytest -q -n auto --durations=10 tests --ignore=tests/test_transformers_extra.py --ignore=tests/test_curated_extra.py
	$(BIN)/pip install -q -e ".[transformers,curated]"
	$(BIN)/python -m pytest -q tests/test_transformers_extra.py tests/test_curated_extra.py

# project.yml: one workflow, `all`; the size (a table in scripts/presets.py) is a var: corpus|training|metrics|packages/SIZE/.
demo: setup
	$(BIN)/python -m spacy project run all . --vars.size demo

# The same workflow on tiny slices of the same real data (a few minutes); CI runs it.
ci-project: setup
	$(BIN)/python -m spacy project run all . --vars.size ci

bench: setup
	$(BIN)/python bench/bench_bilm.py

clean:
	rm -rf $(VENV) build dist *.egg-info

# GPU machines reach no package registry: prepare here (network), carry .gpu/wheels (+ .gpu/fixtures, .gpu/check for gpu-check).
gpu-wheels: setup
	$(BIN)/python bench/gpu_prepare.py wheels

gpu-data: setup
	$(BIN)/python bench/gpu_prepare.py data

# On the GPU machine (no setup: it uses $(GPU_PY) and installs .gpu/wheels into /tmp via bench/gpu_env.sh).
gpu-check:
	export GPU_PY="$(GPU_PY)" && . bench/gpu_env.sh && $$GPU_PY bench/gpu_check.py $(GPU_CHECK_ARGS)

# The GPU demo (bench/gpu_demo.py): news + BBC text and CoNLL-2003, fetched and prepared here into .gpu/data
# (~10 MB, carried with .gpu/wheels); on the GPU machine about 6 minutes, results in $OUT (default metrics/gpu_demo).
gpu-demo-data: setup
	$(BIN)/python bench/gpu_demo.py data

gpu-demo:
	. bench/gpu_env.sh && $$GPU_PY bench/gpu_demo.py run --device gpu $(GPU_DEMO_ARGS)

# README's last section: `spacy project document` of project.yml alone (no fetched assets, so the output is the same everywhere).
project-docs: setup
	d=$$(mktemp -d) && cp project.yml $$d/ && $(BIN)/python -m spacy project document $$d --output README.md; rm -rf $$d
