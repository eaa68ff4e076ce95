# Source at the start of a command on a GPU machine that has torch/CuPy/numpy/h5py but neither spaCy nor a
# package registry:   . bench/gpu_env.sh && python3 bench/gpu_check.py
# Installs .gpu/wheels (made by `make gpu-wheels` on a machine with network) into a private folder and puts
# it on PYTHONPATH; does nothing to the installed packages. POSIX sh (make runs recipes with /bin/sh).
# The working tree comes first on PYTHONPATH so its code wins over the copy in the wheel; the wheel's
# dist-info still provides the entry points spaCy finds the `elmo` factory and architectures by.

GPU_PY="${GPU_PY:-python3}"
GPU_SITE="${GPU_SITE:-/tmp/spacy-elmo-site}"
# gpu_check.py counts its --budget-seconds from here (if under 5 minutes ago), so the install is inside the budget
SPACY_ELMO_GPU_T0="$(date +%s)"
export GPU_PY GPU_SITE SPACY_ELMO_GPU_T0
export PYTHONUNBUFFERED=1

_gpu_repo="$(pwd)"
if "$GPU_PY" -c "import spacy, thinc, importlib.metadata as m; m.version('spacy-elmo')" >/dev/null 2>&1; then
    echo "gpu_env: spaCy and spacy-elmo already importable; nothing installed"
elif ! ls .gpu/wheels/*.whl >/dev/null 2>&1; then
    echo "gpu_env: no .gpu/wheels here: run 'make gpu-wheels' on a machine with network and carry .gpu/wheels" >&2
else
    _gpu_start=$(date +%s)
    mkdir -p "$GPU_SITE"
    # --target skips pip's externally-managed (PEP 668) check and leaves the image's packages alone
    if ! "$GPU_PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --disable-pip-version-check --target "$GPU_SITE" .gpu/wheels/*.whl; then
        # no pip, or pip failed: a wheel is a zip laid out as site-packages (none of these has a .data folder)
        echo "gpu_env: pip install --target did not work; unzipping the wheels instead" >&2
        "$GPU_PY" -c "import sys, zipfile; [zipfile.ZipFile(w).extractall(sys.argv[1]) for w in sys.argv[2:]]" \
            "$GPU_SITE" .gpu/wheels/*.whl
    fi
    export PYTHONPATH="$_gpu_repo:$GPU_SITE${PYTHONPATH:+:$PYTHONPATH}"
    echo "gpu_env: installed $(ls .gpu/wheels/*.whl | wc -l) wheels into $GPU_SITE in $(( $(date +%s) - _gpu_start ))s"
fi
"$GPU_PY" -c "
import importlib.metadata as m
import numpy, torch
try:
    import spacy, thinc, spacy_elmo
except Exception as err:
    print('gpu_env: import failed:', repr(err)); raise SystemExit(0)
try:
    cupy = 'cupy ' + __import__('cupy').__version__
except Exception as err:
    cupy = 'cupy import failed: ' + repr(err)
print('gpu_env: python', __import__('sys').version.split()[0], '| torch', torch.__version__, '| cuda', torch.cuda.is_available(),
      '| numpy', numpy.__version__, '| spacy', spacy.__version__, '| thinc', thinc.__version__, '| spacy-elmo', m.version('spacy-elmo'), '|', cupy)
" 2>&1 || true
unset _gpu_repo _gpu_start
