"""One writer per --output: a second `pretrain` into a folder that a live run is training is refused, naming
that run's process; a killed run's lock never blocks the next one."""
import os
import signal
import subprocess
import time

import pytest

from spacy_elmo.pretrain.checkpoint import load_checkpoint
from spacy_elmo.pretrain.output import LOCK_NAME
from tests.pretrain.helpers import ROOT, cli_command, log_rows, make_corpus, pretrain_args, run_cli


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp("synthetic"), n_train=400, n_dev=20)


def _events(out) -> list:
    return [row["event"] for row in log_rows(out)]


def test_a_second_run_into_a_folder_being_trained_is_refused_and_a_killed_run_blocks_nothing(corpus, tmp_path, capsys):
    out = tmp_path / "elmo"
    args = pretrain_args(corpus, out, "--training.max_steps", 100000, "--training.checkpoint_every", 2,
                         "--training.eval_every", 0, "--training.log_every", 1)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    first = subprocess.Popen(cli_command(*args), cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 180  # a guard against hanging, not a timing check
        while not (out / "checkpoint.pt").is_file():
            assert first.poll() is None, first.communicate()[0]
            assert time.time() < deadline, "training did not start"
            time.sleep(0.05)
        for extra in ([], ["--resume"], ["--overwrite"]):  # the second process is this one
            code = run_cli(*args, *extra)
            captured = capsys.readouterr()
            text = " ".join((captured.out + captured.err).split())
            assert code == 1, text
            assert f"being written by another pretraining run (process {first.pid})" in text, text
            assert "Traceback" not in text
        assert first.poll() is None  # the first run goes on, alone in its log
        assert _events(out).count("start") == 1
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert (out / LOCK_NAME).is_file()  # the killed run could not clean up: its lock died with it
    step = load_checkpoint(out)["state"]["step"]
    assert run_cli(*args, "--resume", "--training.max_steps", step + 1) == 0
    assert load_checkpoint(out)["state"]["step"] == step + 1
    assert not (out / LOCK_NAME).exists()  # a finished run leaves no lock file behind
