"""Stopping pretraining with Ctrl+C or `kill` keeps the work done; oversized sentences are announced."""
import os
import signal
import subprocess
import time

import pytest

from spacy_elmo.pretrain.checkpoint import load_checkpoint
from tests.pretrain.helpers import ROOT, cli_command, log_rows, make_corpus, pretrain_args, run_cli


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp("synthetic"), n_train=400, n_dev=20)


def _logged_steps(out) -> list:
    return [r["step"] for r in log_rows(out) if r["event"] == "train"]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_stop_signal_saves_a_checkpoint_to_resume_from(corpus, tmp_path, sig):
    out = tmp_path / "elmo"
    # No periodic checkpoint: without the signal handling, every step done would be lost.
    quiet = ["--training.checkpoint_every", "0", "--training.eval_every", "0", "--training.log_every", "1"]
    args = pretrain_args(corpus, out, "--training.max_steps", 100000, *quiet)
    proc = subprocess.Popen(cli_command(*args), cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 180  # a guard against hanging, not a timing check
    while len(_logged_steps(out)) < 3:
        assert proc.poll() is None, proc.communicate()[0]
        assert time.time() < deadline, "training did not start"
        time.sleep(0.05)
    proc.send_signal(sig)
    output, _ = proc.communicate(timeout=180)
    assert proc.returncode == 130, output
    assert "--resume" in output and "Traceback" not in output, output
    step = load_checkpoint(out)["state"]["step"]
    assert step >= 3
    assert run_cli(*pretrain_args(corpus, out, "--training.max_steps", step + 2, *quiet), "--resume") == 0
    assert load_checkpoint(out)["state"]["step"] == step + 2


def test_a_sentence_over_batch_tokens_is_announced(corpus, tmp_path):
    long_corpus = tmp_path / "long.txt"
    long_corpus.write_text(corpus["train"].read_text(encoding="utf8") + " ".join(["word"] * 3000) + "\n", encoding="utf8")
    args = pretrain_args(corpus, tmp_path / "elmo", "--training.max_steps", 1, "--training.eval_every", 0,
                         "--training.checkpoint_every", 0, "--paths.train", long_corpus, "--corpus.max_length", 0,
                         "--training.batch_tokens", 400)
    with pytest.warns(UserWarning, match="3,000 tokens is longer than training.batch_tokens = 400"):
        assert run_cli(*args) == 0
