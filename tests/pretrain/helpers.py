"""Shared by the pretraining tests: a synthetic corpus, the CLI called as a user calls it, hdf5 reading."""
import json
import sys
from pathlib import Path
from typing import Dict, List

import h5py
import numpy

from spacy_elmo.pretrain.synthetic import write_corpus

ROOT = Path(__file__).resolve().parents[2]
TINY_CONFIG = ROOT / "configs" / "pretrain_tiny.cfg"
# a run of two steps that writes no checkpoint or evaluation before it ends: enough to reach every check
QUICK = ("--training.max_steps", "2", "--training.eval_every", "0", "--training.checkpoint_every", "0",
         "--training.log_every", "1")


def make_corpus(directory: Path, n_train: int = 3000, n_dev: int = 300) -> Dict[str, Path]:
    return {
        "train": write_corpus(directory / "train.txt", n_train, seed=1),
        "dev": write_corpus(directory / "dev.txt", n_dev, seed=2),
    }


def log_rows(output: Path) -> List[dict]:
    """The events a run has logged to OUTPUT/log.jsonl so far (none before it starts)."""
    log = output / "log.jsonl"
    if not log.is_file():
        return []
    return [json.loads(line) for line in log.read_text(encoding="utf8").splitlines() if line.strip()]


def run_cli(*args: str) -> int:
    """`python -m spacy_elmo ARGS` in this process; returns the exit code."""
    from spacy_elmo.cli import main

    try:
        main([str(a) for a in args])
    except SystemExit as err:
        return int(err.code or 0)
    return 0


def pretrain_args(corpus: Dict[str, Path], output: Path, *extra: str) -> List[str]:
    return ["pretrain", str(TINY_CONFIG), "--output", str(output),
            "--paths.train", str(corpus["train"]), "--paths.dev", str(corpus["dev"]),
            # one thread: tiny GEMMs gain nothing from two, and two OpenMP threads stall badly when
            # another process shares the 2 cores
            "--training.threads", "1", *map(str, extra)]


def cli_command(*args: str) -> List[str]:
    return [sys.executable, "-m", "spacy_elmo", *[str(a) for a in args]]


def read_hdf5(path: Path) -> Dict[str, numpy.ndarray]:
    out: Dict[str, numpy.ndarray] = {}
    with h5py.File(path, "r") as fin:
        fin.visititems(lambda name, obj: out.__setitem__(name, obj[...]) if isinstance(obj, h5py.Dataset) else None)
    return out


def output_of(capsys) -> str:
    """What the command printed: progress on stdout, a failure's one line on stderr."""
    captured = capsys.readouterr()
    return captured.out + captured.err
