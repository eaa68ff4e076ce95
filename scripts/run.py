"""The project's steps. Each prints the exact command it runs, so any step can be rerun by hand.

    python scripts/run.py prepare|pretrain|train|evaluate|package --size ci|demo|full [--gpu-id N]
"""
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import List

import typer

sys.path.insert(0, str(Path(__file__).parent))
from presets import FRACTIONS, gpu_args, preset  # noqa: E402

PY = sys.executable
app = typer.Typer(add_completion=False, no_args_is_help=True)
SIZE = typer.Option("demo", "--size", help="ci, demo or full")
GPU = typer.Option(-1, "--gpu-id", help="GPU id, -1 for CPU")


def sh(args: List[str]) -> None:
    print(f"\n$ {shlex.join(args)}", flush=True)
    start = time.perf_counter()
    subprocess.run(args, check=True)
    print(f"({time.perf_counter() - start:.0f}s)", flush=True)


def runs(size: str):
    """(task, features, fraction) of every pipeline trained: ner at three data sizes, textcat once."""
    for features in ("elmo", "tok2vec"):
        for fraction in FRACTIONS:
            yield "ner", features, fraction
        yield "textcat", features, "100"


@app.command()
def prepare(size: str = SIZE) -> None:
    p = preset(size)
    sh([PY, "scripts/prepare_conll.py", "assets/conll2003", "corpus/conll2003", *p["conll"]])
    sh([PY, "scripts/prepare_textcat.py", "assets/bbc", "corpus/bbc", *p["textcat"]])
    sh([PY, "scripts/prepare_lm_corpus.py", "assets/news", "corpus/lm", *p["lm"]])


@app.command()
def pretrain(size: str = SIZE, gpu_id: int = GPU) -> None:
    p = preset(size)
    sh([PY, "-m", "spacy_elmo", "pretrain", p["pretrain_config"], "--output", "training/elmo",
        "--paths.train", "corpus/lm/train.txt", "--paths.dev", "corpus/lm/dev.txt", *p["pretrain"], *gpu_args(gpu_id)])


def elmo_width(weights_dir: str = "training/elmo") -> int:
    """The listener's width must equal the pretrained biLM's 2 x projection_dim (checked at initialize)."""
    return 2 * int(json.loads(Path(weights_dir, "options.json").read_text())["lstm"]["projection_dim"])


@app.command()
def train(size: str = SIZE, gpu_id: int = GPU) -> None:
    p = preset(size)
    for task, features, fraction in runs(size):
        corpus = "corpus/conll2003" if task == "ner" else "corpus/bbc"
        overrides = list(p["ner"] if task == "ner" else p["textcat_train"])
        if features == "elmo":
            overrides += [f"--components.{task}.model.tok2vec.width", str(elmo_width())]
        sh([PY, "-m", "spacy", "train", f"configs/{task}_{features}.cfg", "--output", f"training/{task}_{features}_{fraction}",
            "--paths.train", f"{corpus}/{FRACTIONS[fraction]}", "--paths.dev", f"{corpus}/dev.spacy",
            "--paths.elmo_weights", "training/elmo", *overrides, *gpu_args(gpu_id)])


@app.command()
def evaluate(size: str = SIZE, gpu_id: int = GPU) -> None:
    Path("metrics").mkdir(exist_ok=True)
    for task, features, fraction in runs(size):
        corpus = "corpus/conll2003" if task == "ner" else "corpus/bbc"
        sh([PY, "-m", "spacy", "evaluate", f"training/{task}_{features}_{fraction}/model-best", f"{corpus}/test.spacy",
            "--output", f"metrics/{task}_{features}_{fraction}.json", *gpu_args(gpu_id)])


@app.command()
def package(size: str = SIZE) -> None:
    Path("packages").mkdir(exist_ok=True)
    sh([PY, "-m", "spacy", "package", "training/ner_elmo_100/model-best", "packages", "--name", "ner_elmo",
        "--version", "0.1.0", "--force"])


if __name__ == "__main__":
    app()
