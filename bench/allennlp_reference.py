"""AllenNLP 2.10.1's `_ElmoBiLm` as a reference for bench_bilm.py, in its own venv under the user cache.
`python bench/bench_bilm.py --compare-allennlp` uses it: parity per layer and precision, then the speed ratio.

On first use it builds the venv (a few minutes; later runs reuse it):
  ~/.cache/spacy-elmo-bench/allennlp-venv   ($SPACY_ELMO_BENCH_CACHE replaces ~/.cache/spacy-elmo-bench)
with the same torch release as the project's (the CPU build where that is what the project has: a bare
`torch`, or anything that lets pip choose torch, would pull a CUDA build of several GB, so torch is pinned by a
constraints file and every package that depends on torch is installed with --no-deps), allennlp==2.10.1 with
--no-deps, and what `from allennlp.modules.elmo import _ElmoBiLm` needs on a current Python: allennlp's
__init__ imports spacy and transformers, its file utilities cached_path 1.1.x, which imports boto3 and
google-cloud-storage, and huggingface_hub < 1 (allennlp imports HfFolder and Repository from it).
torchvision is not installed: the worker puts an empty module in its place (only AllenNLP's vision code uses it).

The reference runs in a subprocess of that venv's python (bench/_allennlp_worker.py), on the same weight files
and token lists, with the same torch thread count, timed the way bench_bilm.py times the project's biLM.
This module is a library of bench_bilm.py and imports nothing from it (no import cycle).
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

HERE = Path(__file__).resolve().parent
WORKER = HERE / "_allennlp_worker.py"
CACHE = Path(os.environ.get("SPACY_ELMO_BENCH_CACHE", Path.home() / ".cache" / "spacy-elmo-bench"))
DEFAULT_VENV = CACHE / "allennlp-venv"
READY = ".spacy-elmo-ready"

# Everything but torch. Each step is one pip call; the versions that matter are pinned to what was checked.
NO_DEPS = ["allennlp==2.10.1", "cached_path==1.1.6", "fairscale==0.4.6"]  # these depend on torch
WITH_DEPS = [
    "transformers==4.25.1",  # allennlp 2.10.1 asks for < 4.21, whose tokenizers has no wheel for Python 3.11
    "huggingface_hub==0.10.1",  # cached_path 1.1.6; allennlp imports HfFolder and Repository (gone in 1.0)
    "filelock<3.9",
    "rich<13",
    "boto3",
    "google-cloud-storage<3",
    "spacy",
    "numpy",
    "h5py",
    "lmdb",
    "dill",
    "base58",
    "more_itertools",
]


def torch_spec() -> str:
    """The project's torch release (without its local tag: `torch==2.13.0` picks 2.13.0+cpu where that is on
    disk); $SPACY_ELMO_BENCH_TORCH overrides it."""
    if os.environ.get("SPACY_ELMO_BENCH_TORCH"):
        return os.environ["SPACY_ELMO_BENCH_TORCH"]
    return "torch==" + metadata.version("torch").split("+")[0]


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _run(cmd: List[str], log: Callable[[str], None]) -> None:
    log("  $ " + " ".join(str(c) for c in cmd))
    done = subprocess.run([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(str(c) for c in cmd)} failed ({done.returncode}):\n{done.stdout[-4000:]}")


def ensure_venv(venv: Path = DEFAULT_VENV, log: Callable[[str], None] = print) -> Path:
    """The venv's python, building the venv first if it is missing or was built from another spec.
    Returns at once when it is ready; a half-built one (no marker) is removed and built again."""
    spec = {"torch": torch_spec(), "no_deps": NO_DEPS, "with_deps": WITH_DEPS}
    marker = venv / READY
    if marker.exists():
        try:
            if json.loads(marker.read_text(encoding="utf8")).get("spec") == spec:
                return venv_python(venv)
        except ValueError:
            pass
    start = time.perf_counter()
    log(f"Building the AllenNLP reference venv in {venv} (once; a few minutes)")
    if venv.exists():
        shutil.rmtree(venv)
    venv.parent.mkdir(parents=True, exist_ok=True)
    # The base interpreter, not the project's venv, so nothing of the project leaks in.
    base = getattr(sys, "_base_executable", sys.executable)
    _run([base, "-m", "venv", venv], log)
    python = venv_python(venv)
    pip = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    constraints = venv / "constraints.txt"
    constraints.write_text(spec["torch"] + "\n", encoding="utf8")
    _run(pip + [spec["torch"]], log)
    _run(pip + ["--no-deps"] + NO_DEPS, log)
    _run(pip + ["-c", constraints] + WITH_DEPS, log)
    probe = subprocess.run([str(python), "-c", "import torch; print(torch.__version__)"], capture_output=True, text=True, check=True)
    torch_version = probe.stdout.strip()
    # the import check, as the worker does it
    check = ("import sys, types, warnings; sys.modules.setdefault('torchvision', types.ModuleType('torchvision')); "
             "warnings.filterwarnings('ignore'); from allennlp.modules.elmo import _ElmoBiLm, batch_to_ids")
    _run([python, "-c", check], log)
    seconds = time.perf_counter() - start
    marker.write_text(json.dumps({"spec": spec, "torch": torch_version, "setup_seconds": round(seconds, 1)}), encoding="utf8")
    log(f"AllenNLP venv ready in {seconds:.0f} s (torch {torch_version})")
    return python


def run_reference(python: Path, options_file: Path, weight_file: Path, threads: int,
                  runs: Sequence[Dict] = (), parity_sentences: Optional[Sequence[Sequence[str]]] = None,
                  log: Callable[[str], None] = print) -> Dict:
    """Run the worker: `runs` is [{"batch_size": n, "sentences": [[token, ...], ...]}, ...], timed as
    bench_bilm.py times ours (warm-up on the first batch, then every sentence). Returns the worker's JSON
    ({"torch", "allennlp", "threads", "runs": [{"batch_size", "tokens", "seconds"}]}) plus "parity": the
    per-sentence layer outputs (n_layers + 1, n_tokens, 2P) when parity_sentences is given."""
    import numpy

    with tempfile.TemporaryDirectory() as tmp:
        request = {
            "options_file": str(options_file),
            "weight_file": str(weight_file),
            "threads": threads,
            "runs": list(runs),
            "parity_sentences": [list(s) for s in parity_sentences] if parity_sentences else None,
            "parity_out": str(Path(tmp) / "parity.npz"),
        }
        (Path(tmp) / "request.json").write_text(json.dumps(request), encoding="utf8")
        env = dict(os.environ, PYTHONNOUSERSITE="1", TOKENIZERS_PARALLELISM="false")
        env.pop("PYTHONPATH", None)
        done = subprocess.run([str(python), str(WORKER), str(Path(tmp) / "request.json")], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env)
        if done.returncode != 0:
            raise RuntimeError(f"the AllenNLP worker failed ({done.returncode}):\n{done.stderr[-4000:]}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
        if parity_sentences:
            with numpy.load(request["parity_out"]) as npz:
                result["parity"] = [npz[f"arr_{i}"] for i in range(len(parity_sentences))]
    return result


def compare_layers(ours: Sequence, theirs: Sequence) -> List[Tuple[float, float]]:
    """Per layer, over every token of every sentence: (max |ours - theirs|, mean cosine of the token vectors)."""
    import numpy

    out = []
    for layer in range(ours[0].shape[0]):
        a = numpy.concatenate([o[layer] for o in ours]).astype(numpy.float64)
        b = numpy.concatenate([t[layer] for t in theirs]).astype(numpy.float64)
        cos = (a * b).sum(1) / numpy.maximum(numpy.linalg.norm(a, axis=1) * numpy.linalg.norm(b, axis=1), 1e-30)
        out.append((float(abs(a - b).max()), float(cos.mean())))
    return out


def format_comparison(stats: List[Tuple[float, float]]) -> str:
    return ("max |diff| per layer " + " ".join(f"{d:.2e}" for d, _ in stats)
            + "; mean cosine " + " ".join(f"{c:.6f}" for _, c in stats))


PARITY_SENTENCES = [
    ["The", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog", "."],
    ["ELMo", "embeddings", "are", "contextual", "."],
    ["A"],
    ["Sentences", "of", "different", "lengths", "share", "one", "batch", ",", "padded", "on", "the", "right",
     "and", "sorted", "by", "length", "inside", "the", "LSTM", "."],
    ["naïve", "café", "Zürich", "東京", "😀", "x" * 60],
    ["1,234.56", "$", "100", "%", "--", "...", "(", ")", "U.S.", "e-mail"],
]
