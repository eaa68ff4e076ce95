# Set-up on a fresh machine: a venv with the CPU build of torch first (a bare torch pulls CUDA), then the package.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH := torch==2.13.0
# The GPU machine's interpreter (no .venv there: torch + CuPy come with its image).
GPU_PY ?= python3
GPU_CHECK_ARGS ?=
# The GPU demo is the workflow at size gpu (scripts/presets.py): the steps that need the network run here, the
# rest on the GPU machine (carry corpus/gpu, training/gpu and .gpu/wheels there).
GPU_DEMO_DATA := fetch prepare-conll-gpu prepare-bbc-gpu prepare-sentiment-gpu prepare-lm-gpu pretrain-config-gpu prepare-adapt-gpu
GPU_DEMO_RUN := pretrain-gpu adapt-gpu train-all-gpu evaluate-all-gpu report-gpu

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
	# mypy (one core, ~40 s cold) beside the suite, whose venv and pip steps leave cores idle; either failing fails the target.
	# --dist loadscope: a module's tests share one worker, so its module fixtures (the wheel, the reference venvs) are built once
	$(BIN)/python -m mypy spacy_elmo & types=$$!; \
	$(BIN)/python -m pytest -q -n auto --dist loadscope --durations=10 tests --ignore=tests/test_transformers_extra.py --ignore=tests/test_curated_extra.py; \
	suite=$$?; wait $$types && exit $$suite
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

# The GPU demo: the project's own commands at size gpu. Here: fetch and prepare into corpus/gpu and training/gpu;
# on the GPU machine: pretrain, ner x {10%, 100%} x {ELMo, tok2vec}, evaluate, report -> metrics/gpu (and $OUT).
gpu-demo-data: setup
	for step in $(GPU_DEMO_DATA); do $(BIN)/python -m spacy project run $$step . --vars.size gpu || exit 1; done

gpu-demo:
	. bench/gpu_env.sh && for step in $(GPU_DEMO_RUN); do \
		$$GPU_PY -m spacy project run $$step . --vars.size gpu --vars.gpu_id 0 || exit 1; done; \
	if [ -n "$$OUT" ]; then cp -r metrics/gpu "$$OUT/gpu_demo"; fi

# docs/workflow.md's last section: `spacy project document` of project.yml alone (no fetched assets, so the output is the same everywhere).
project-docs: setup
	d=$$(mktemp -d) && cp project.yml $$d/ && $(BIN)/python -m spacy project document $$d --output docs/workflow.md; rm -rf $$d
