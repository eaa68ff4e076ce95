"""`spacy elmo pretrain` failures a user can fix: one line naming the problem and the fix on stderr, exit code 1,
nothing half-written; --verbose (or SPACY_ELMO_VERBOSE=1) adds the traceback."""
import os
import resource
import signal
import subprocess
from pathlib import Path

import pytest
import torch

from spacy_elmo.pretrain.checkpoint import load_checkpoint
from tests.pretrain.helpers import QUICK, ROOT, TINY_CONFIG, cli_command, make_corpus, pretrain_args, run_cli


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp("synthetic"), n_train=200, n_dev=20)


def _one_line_failure(capsys, *args) -> str:
    code = run_cli(*args)
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert code == 1, captured.out + captured.err
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert "Traceback" not in captured.out
    return lines[0]


def _broken_config(tmp_path: Path) -> Path:
    config = tmp_path / "broken.cfg"
    config.write_text(TINY_CONFIG.read_text(encoding="utf8").replace("[training]", "[training"), encoding="utf8")
    return config


def test_a_config_syntax_error_is_one_line_and_verbose_shows_the_traceback(corpus, tmp_path, capsys, monkeypatch):
    args = pretrain_args(corpus, tmp_path / "elmo", *QUICK)
    args[1] = str(_broken_config(tmp_path))
    line = _one_line_failure(capsys, *args)
    assert f"Config file {args[1]} cannot be parsed" in line and "config format" in line
    assert not (tmp_path / "elmo").exists()
    assert run_cli(*args, "--verbose") == 1
    assert "Traceback" in capsys.readouterr().err
    monkeypatch.setenv("SPACY_ELMO_VERBOSE", "1")
    assert run_cli(*args) == 1
    assert "Traceback" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_a_gpu_id_without_cuda_is_one_line(corpus, tmp_path, capsys):
    line = _one_line_failure(capsys, *pretrain_args(corpus, tmp_path / "elmo", *QUICK, "--gpu-id", "0"))
    assert "--gpu-id 0 was given but torch sees no CUDA device: use --gpu-id -1" in line
    assert not (tmp_path / "elmo").exists()


def test_an_output_that_is_a_file_is_one_line(corpus, tmp_path, capsys):
    out = tmp_path / "elmo"
    out.write_text("mine\n", encoding="utf8")
    line = _one_line_failure(capsys, *pretrain_args(corpus, out, *QUICK))
    assert f"--output {out} is a file: give a directory" in line
    assert out.read_text(encoding="utf8") == "mine\n"


def _unwritable_folder(tmp_path: Path) -> Path:
    if os.geteuid() != 0:
        folder = tmp_path / "readonly"
        folder.mkdir()
        folder.chmod(0o500)
        return folder
    if not Path("/sys").is_dir():  # root writes anywhere else
        pytest.skip("no folder that root cannot write to")
    return Path("/sys")


def test_an_output_in_a_read_only_folder_is_one_line(corpus, tmp_path, capsys):
    out = _unwritable_folder(tmp_path) / "elmo"
    line = _one_line_failure(capsys, *pretrain_args(corpus, out, *QUICK))
    assert f"Cannot write into --output {out}:" in line and "Choose a folder you can write to" in line
    assert not out.exists()


def _file_size_limit(limit: int):
    def limited() -> None:  # in the child, before exec: an ignored SIGXFSZ makes a write past the limit fail with EFBIG
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return limited


@pytest.mark.skipif(not hasattr(resource, "RLIMIT_FSIZE") or not hasattr(signal, "SIGXFSZ"),
                    reason="no file-size limit to simulate a full disk with")
def test_a_full_disk_while_checkpointing_is_one_line_and_keeps_the_last_checkpoint(corpus, tmp_path):
    out = tmp_path / "elmo"
    args = pretrain_args(corpus, out, "--training.eval_every", "0", "--training.checkpoint_every", "2",
                         "--training.log_every", "1")
    assert run_cli(*args, "--training.max_steps", "2") == 0
    size = (out / "checkpoint.pt").stat().st_size
    before = (out / "checkpoint.pt").read_bytes()
    # a later checkpoint cannot be written whole: the limit is below its size, above every other file's
    done = subprocess.run(cli_command(*args, "--training.max_steps", "6", "--resume"), cwd=ROOT, capture_output=True,
                          text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)), preexec_fn=_file_size_limit(size // 2),
                          timeout=300)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 1, done.stdout + done.stderr
    assert len(lines) == 1 and "Traceback" not in done.stdout + done.stderr, done.stderr
    assert f"Cannot write the checkpoint {out / 'checkpoint.pt'} at step 4" in lines[0]
    assert "the last complete checkpoint (step 2) is kept" in lines[0] and "--resume" in lines[0]
    assert (out / "checkpoint.pt").read_bytes() == before and load_checkpoint(out)["state"]["step"] == 2
    assert not list(out.glob(".*.tmp"))  # nothing half-written
    assert run_cli(*args, "--training.max_steps", "6", "--resume") == 0  # space again: it goes on
    assert load_checkpoint(out)["state"]["step"] == 6
