"""The project's steps, one call per command of project.yml. Each prints the exact command it runs,
so any step can be rerun by hand.

    python scripts/run.py prepare conll|bbc|lm --size SIZE
    python scripts/run.py pretrain --size SIZE [--gpu-id N]
    python scripts/run.py train ner|textcat elmo|tok2vec 10|25|100 --size SIZE [--elmo DIR] [--gpu-id N]
    python scripts/run.py evaluate ner|textcat elmo|tok2vec 10|25|100 --size SIZE [--gpu-id N]
    python scripts/run.py package --size SIZE --name NAME --version VERSION
    python scripts/run.py wheel

SIZE is ci, demo or full (scripts/presets.py). A size reads and writes only its own folders:
corpus/SIZE/, training/SIZE/, metrics/SIZE/ and packages/SIZE/, so the output of one size can never
stand in for another's in project.yml's deps. The `*_commands` functions build the argv lists without
running anything (tests/test_project.py checks them against project.yml's deps and outputs).
"""
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

import typer

sys.path.insert(0, str(Path(__file__).parent))
from presets import FRACTIONS, gpu_args, preset  # noqa: E402

PY = sys.executable
app = typer.Typer(add_completion=False, no_args_is_help=True)
SIZE = typer.Option(..., "--size", help="ci, demo or full (scripts/presets.py)")
GPU = typer.Option(-1, "--gpu-id", help="GPU id, -1 for CPU")

TASKS = ("ner", "textcat")
FEATURES = ("elmo", "tok2vec")
# What each prepare step reads (under assets/) and the script that does it; outputs go to corpus/SIZE/NAME.
DATA = {"conll": ("conll2003", "scripts/prepare_conll.py"), "bbc": ("bbc", "scripts/prepare_textcat.py"),
        "lm": ("news", "scripts/prepare_lm_corpus.py")}
CORPUS_NAMES = {"conll": "conll2003", "bbc": "bbc", "lm": "lm"}
Run = Tuple[str, str, str]


def sh(args: List[str]) -> None:
    print(f"\n$ {shlex.join(args)}", flush=True)
    start = time.perf_counter()
    returncode = subprocess.run(args).returncode
    if returncode != 0:  # the command's own output says why; this says which one, without a traceback
        raise SystemExit(f"Failed with exit code {returncode} after {time.perf_counter() - start:.0f}s: {shlex.join(args)}")
    print(f"({time.perf_counter() - start:.0f}s)", flush=True)


def runs() -> Iterator[Run]:
    """(task, features, fraction) of every pipeline trained: ner at three data sizes, textcat once."""
    for features in FEATURES:
        for fraction in FRACTIONS:
            yield "ner", features, fraction
        yield "textcat", features, "100"


def check_run(task: str, features: str, fraction: str) -> None:
    if (task, features, fraction) not in set(runs()):
        valid = ", ".join(" ".join(run) for run in runs())
        raise SystemExit(f"No pipeline {task} {features} {fraction}; the project trains: {valid}.")


def corpus_dir(size: str, data: str) -> str:
    return f"corpus/{size}/{CORPUS_NAMES[data]}"


def elmo_dir(size: str) -> str:
    """Where the size's pretrain step exports its biLM (options.json, weights.hdf5, vocab.txt, metrics.json)."""
    return f"training/{size}/elmo"


def pipeline_dir(size: str, task: str, features: str, fraction: str) -> str:
    return f"training/{size}/{task}_{features}_{fraction}"


def metrics_file(size: str, task: str, features: str, fraction: str) -> str:
    return f"metrics/{size}/{task}_{features}_{fraction}.json"


def prepare_commands(data: str, size: str) -> List[List[str]]:
    if data not in DATA:
        raise SystemExit(f"Unknown data {data!r}; choose one of {', '.join(DATA)}.")
    options = preset(size)[{"conll": "conll", "bbc": "textcat", "lm": "lm"}[data]]
    assets, script = DATA[data]
    return [[PY, script, f"assets/{assets}", corpus_dir(size, data), *options]]


def pretrain_commands(size: str, gpu_id: int = -1) -> List[List[str]]:
    p = preset(size)
    lm = corpus_dir(size, "lm")
    return [[PY, "-m", "spacy_elmo", "pretrain", p["pretrain_config"], "--output", elmo_dir(size),
             "--paths.train", f"{lm}/train.txt", "--paths.dev", f"{lm}/dev.txt", *p["pretrain"], *gpu_args(gpu_id)]]


def train_commands(task: str, features: str, fraction: str, size: str, gpu_id: int = -1,
                   elmo: Optional[str] = None) -> List[List[str]]:
    check_run(task, features, fraction)
    p = preset(size)
    corpus = corpus_dir(size, "conll" if task == "ner" else "bbc")
    overrides = list(p["ner"] if task == "ner" else p["textcat_train"])
    return [[PY, "-m", "spacy", "train", f"configs/{task}_{features}.cfg",
             "--output", pipeline_dir(size, task, features, fraction),
             "--paths.train", f"{corpus}/{FRACTIONS[fraction]}", "--paths.dev", f"{corpus}/dev.spacy",
             *(["--paths.elmo_weights", elmo or elmo_dir(size)] if features == "elmo" else []),
             *overrides, *gpu_args(gpu_id)]]


def evaluate_commands(task: str, features: str, fraction: str, size: str, gpu_id: int = -1) -> List[List[str]]:
    check_run(task, features, fraction)
    corpus = corpus_dir(size, "conll" if task == "ner" else "bbc")
    return [[PY, "-m", "spacy", "evaluate", f"{pipeline_dir(size, task, features, fraction)}/model-best",
             f"{corpus}/test.spacy", "--output", metrics_file(size, task, features, fraction), *gpu_args(gpu_id)]]


WHEEL_DIR = "packages/spacy_elmo"


def wheel_commands() -> List[List[str]]:
    """This project's own spacy-elmo wheel, which the packaged pipelines require."""
    return [[PY, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", WHEEL_DIR, "."]]


def package_commands(size: str, name: str, version: str) -> List[List[str]]:
    """The ELMo ner pipeline (100% of train) as a wheel: with the spacy-elmo wheel from `wheel` beside it,
    `pip install packages/spacy_elmo/*.whl packages/SIZE/*/dist/*.whl` needs nothing else but the registries."""
    preset(size)
    return [[PY, "-m", "spacy", "package", f"{pipeline_dir(size, 'ner', 'elmo', '100')}/model-best", f"packages/{size}",
             "--name", name, "--version", version, "--build", "wheel", "--force"]]


def fresh(path: str) -> None:
    """A step owns its output folder: what an earlier or interrupted run left there is removed first."""
    if Path(path).exists():
        print(f"removing the previous {path}", flush=True)
        shutil.rmtree(path)


@app.command()
def prepare(data: str = typer.Argument(..., help="conll, bbc or lm"), size: str = SIZE) -> None:
    for args in prepare_commands(data, size):
        sh(args)


@app.command()
def pretrain(size: str = SIZE, gpu_id: int = GPU) -> None:
    commands = pretrain_commands(size, gpu_id)
    fresh(elmo_dir(size))
    for args in commands:
        sh(args)


@app.command()
def train(task: str = typer.Argument(..., help="ner or textcat"), features: str = typer.Argument(..., help="elmo or tok2vec"),
          fraction: str = typer.Argument(..., help="10, 25 or 100 (% of the ner training sentences; textcat: 100)"),
          size: str = SIZE, gpu_id: int = GPU,
          elmo: Optional[str] = typer.Option(None, "--elmo", help="biLM folder (options.json + weights.hdf5); default training/SIZE/elmo")) -> None:
    check_run(task, features, fraction)
    preset(size)
    # The configs' listeners take their width (2 x projection_dim) from the elmo pipe: nothing to read here.
    commands = train_commands(task, features, fraction, size, gpu_id, elmo=elmo)
    fresh(pipeline_dir(size, task, features, fraction))
    for args in commands:
        sh(args)


@app.command()
def evaluate(task: str = typer.Argument(...), features: str = typer.Argument(...), fraction: str = typer.Argument(...),
             size: str = SIZE, gpu_id: int = GPU) -> None:
    commands = evaluate_commands(task, features, fraction, size, gpu_id)
    Path(f"metrics/{size}").mkdir(parents=True, exist_ok=True)
    for args in commands:
        sh(args)


@app.command()
def wheel() -> None:
    fresh(WHEEL_DIR)
    for args in wheel_commands():
        sh(args)


@app.command()
def package(size: str = SIZE, name: str = typer.Option(..., "--name"), version: str = typer.Option(..., "--version")) -> None:
    commands = package_commands(size, name, version)
    fresh(f"packages/{size}")
    Path(f"packages/{size}").mkdir(parents=True)
    for args in commands:
        sh(args)
    wheels = sorted(str(p) for p in [*Path(WHEEL_DIR).glob("*.whl"), *Path(f"packages/{size}").rglob("*.whl")])
    print(f"\nInstall with: pip install {' '.join(wheels)}", flush=True)


if __name__ == "__main__":
    app()
