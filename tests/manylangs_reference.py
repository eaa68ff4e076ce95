"""elmoformanylangs==0.0.4.post2 in a venv of its own, as the reference the ManyLangs parity tests compare with.

The venv lives under the test cache (tests/conftest.py: $SPACY_ELMO_TEST_CACHE or ~/.cache/spacy-elmo-tests)
and is built once (about 100 s: the project's torch release, which pip takes from its CPU build, then numpy,
h5py and overrides; elmoformanylangs itself with --no-deps), reused while its recorded spec is unchanged.
overrides is pinned below 4: from 4 on, its decorator rejects elmoformanylangs' Highway.forward at import.
Nothing of elmoformanylangs is imported into the test process: tests/manylangs_worker.py runs in the venv.
cached_reference keeps the models it writes and its layers beside the venv, under a digest of the job and the
worker, so that reruns and parallel test workers (each would otherwise run the worker) read them back.
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from contextlib import contextmanager
from typing import Dict, Iterator, List, Tuple

import numpy

WORKER = Path(__file__).resolve().parent / "manylangs_worker.py"
REFERENCE = "elmoformanylangs==0.0.4.post2"
DEPENDENCIES = ["numpy", "h5py", "overrides==3.1.0"]
READY = ".spacy-elmo-ready"


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _pip(python: Path, *args: str) -> None:
    done = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *args],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"pip install {' '.join(args)} failed:\n{done.stdout[-3000:]}")


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Holds PATH.lock while building PATH: parallel builders (pytest-xdist workers) take turns."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / (path.name + ".lock"), "w") as lock:
        try:
            import fcntl

            fcntl.flock(lock, fcntl.LOCK_EX)
        except ImportError:  # no flock (Windows): parallel builders are not expected there
            pass
        yield


def ensure_venv(venv: Path) -> Path:
    """The reference venv's python, built first when missing or built from another spec. Builders in
    parallel (pytest-xdist workers) take turns on a lock file; the second finds the venv ready."""
    torch_spec = "torch==" + metadata.version("torch").split("+")[0]
    spec = json.dumps({"torch": torch_spec, "deps": DEPENDENCIES, "reference": REFERENCE})
    with _locked(venv):
        marker = venv / READY
        if marker.is_file() and marker.read_text(encoding="utf8") == spec:
            return venv_python(venv)
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        python = venv_python(venv)
        _pip(python, torch_spec)  # first and alone: a bare `torch` could resolve to a CUDA build
        _pip(python, *DEPENDENCIES)
        _pip(python, "--no-deps", REFERENCE)
        marker.write_text(spec, encoding="utf8")
        return python


def run_reference(python: Path, variants: List[Dict], sentences: List[List[str]], work: Path) -> Dict[str, List[numpy.ndarray]]:
    """Build every variant with elmoformanylangs' classes (written to variant["dir"]) and embed `sentences`
    with its Embedder: {variant name: one (3, n_tokens, 2P) array per sentence}."""
    job = work / "job.json"
    out = work / "reference.npz"
    job.write_text(json.dumps({"variants": variants, "sentences": sentences, "out": str(out)}, ensure_ascii=False), encoding="utf-8")
    done = subprocess.run([str(python), str(WORKER), str(job)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"the elmoformanylangs worker failed:\n{done.stdout[-4000:]}")
    with numpy.load(out) as data:
        return {v["name"]: [data[f"{v['name']}/{i}"] for i in range(len(sentences))] for v in variants}


def cached_reference(python: Path, variants: List[Dict], sentences: List[List[str]], cache: Path) -> Tuple[Dict[str, Path], Dict[str, List[numpy.ndarray]]]:
    """run_reference, kept under `cache`: ({variant name: its model directory}, {variant name: layers})."""
    job = json.dumps({"variants": variants, "sentences": sentences, "worker": WORKER.read_text(encoding="utf8"),
                      "venv": (python.parent.parent / READY).read_text(encoding="utf8")}, sort_keys=True, ensure_ascii=False)
    work = cache / ("manylangs-reference-" + hashlib.sha256(job.encode("utf8")).hexdigest()[:16])
    with _locked(work):
        if not (work / READY).is_file():
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
            run_reference(python, [dict(v, dir=str(work / v["name"])) for v in variants], sentences, work)
            (work / READY).write_text("done", encoding="utf8")
    with numpy.load(work / "reference.npz") as data:
        layers = {v["name"]: [data[f"{v['name']}/{i}"] for i in range(len(sentences))] for v in variants}
    return {v["name"]: work / v["name"] for v in variants}, layers
