"""`python -m spacy_elmo embed`: the output appears whole or not at all; inputs are never written."""
import errno
import os
import stat
import subprocess
import sys
import textwrap

import h5py
import pytest

import spacy_elmo
from tests.conftest import random_bilm  # noqa: F401  (tiny_weights_dir fixture builds on it)

N_LINES = 20  # with --batch-size 1 the command embeds chunks of 8 lines: 3 chunks


@pytest.fixture
def text(tmp_path):
    path = tmp_path / "in.txt"
    path.write_text("".join(f"line {i} has some words\n" for i in range(N_LINES)), encoding="utf8")
    return path


def embed(*args):
    """`python -m spacy_elmo embed ARGS` in this process: (exit code, output)."""
    from typer.testing import CliRunner

    from spacy_elmo.cli import _register, app

    _register()
    result = CliRunner().invoke(app, ["embed", *map(str, args)])
    return result.exit_code, result.output


def _complete(path) -> bool:
    with h5py.File(path, "r") as f:
        return "sentence_to_index" in f and len(f) == N_LINES + 1


def _fail_on_second_chunk(monkeypatch, exc: BaseException):
    real = spacy_elmo.BiLM.embed_sentences
    calls = []

    def embed_sentences(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise exc
        return real(self, *args, **kwargs)

    monkeypatch.setattr(spacy_elmo.BiLM, "embed_sentences", embed_sentences)


def test_embed_refuses_to_write_over_its_input(tmp_path, tiny_weights_dir, text):
    before = text.read_bytes()
    for same in (text, tmp_path / "sub" / ".." / "in.txt"):
        (tmp_path / "sub").mkdir(exist_ok=True)
        code, output = embed(tiny_weights_dir, text, same)
        assert code == 1 and "same file" in output
    os.link(text, tmp_path / "hardlink.txt")
    code, output = embed(tiny_weights_dir, text, tmp_path / "hardlink.txt")
    assert code == 1 and "same file" in output
    assert text.read_bytes() == before


def test_embed_refuses_to_write_over_the_weights(tiny_weights_dir, text):
    before = (tiny_weights_dir / "weights.hdf5").read_bytes()
    code, output = embed(tiny_weights_dir, text, tiny_weights_dir / "weights.hdf5")
    assert code == 1 and "same file" in output
    assert (tiny_weights_dir / "weights.hdf5").read_bytes() == before


@pytest.mark.parametrize("fault", ["interrupt", "disk_full"])
def test_a_failed_run_keeps_the_earlier_output_and_leaves_no_partial_file(tmp_path, tiny_weights_dir, text, monkeypatch, fault):
    out = tmp_path / "out.hdf5"
    assert embed(tiny_weights_dir, text, out, "--batch-size", "1")[0] == 0
    earlier = out.read_bytes()
    exc = KeyboardInterrupt() if fault == "interrupt" else OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    _fail_on_second_chunk(monkeypatch, exc)
    code, output = embed(tiny_weights_dir, text, out, "--top", "--batch-size", "1")
    assert code != 0
    if fault == "disk_full":
        assert code == 1 and "No space left" in output and "Traceback" not in output
    assert out.read_bytes() == earlier and _complete(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt", "out.hdf5", "tiny_bilm"]


def test_a_killed_run_never_leaves_a_partial_file_under_the_output_name(tmp_path, tiny_weights_dir, text):
    out = tmp_path / "out.hdf5"
    # kill -9 in the middle of writing (second chunk), in a child process that runs the real CLI.
    script = textwrap.dedent(f"""
        import os, signal, sys
        import spacy_elmo
        real = spacy_elmo.BiLM.embed_sentences
        calls = []
        def embed_sentences(self, *args, **kwargs):
            calls.append(1)
            if len(calls) == 2:
                os.kill(os.getpid(), signal.SIGKILL)
            return real(self, *args, **kwargs)
        spacy_elmo.BiLM.embed_sentences = embed_sentences
        from spacy_elmo.cli import main
        main(["embed", {str(tiny_weights_dir)!r}, {str(text)!r}, {str(out)!r}, "--batch-size", "1"])
    """)
    killed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert killed.returncode == -9, killed.stderr
    assert not out.exists()
    # Whatever the kill left is hidden and named as a temporary, not as the output.
    assert all(p.name.startswith(".out.hdf5.") and p.name.endswith(".tmp")
               for p in tmp_path.iterdir() if p.name not in ("in.txt", "tiny_bilm"))
    assert embed(tiny_weights_dir, text, out, "--batch-size", "1")[0] == 0 and _complete(out)


def test_embed_output_has_the_umask_mode(tmp_path, tiny_weights_dir, text):
    old = os.umask(0o022)
    try:
        assert embed(tiny_weights_dir, text, tmp_path / "out.hdf5")[0] == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "out.hdf5").st_mode) == 0o644


@pytest.mark.parametrize(
    "case, message",
    [
        ("binary", "looks binary"),
        ("latin1", "not UTF-8 (line 2"),
        ("no_such_dir", "does not exist"),
        ("output_is_dir", "is a directory"),
        ("unknown_spacy", "neither an installed spaCy pipeline"),
        ("batch_zero", "--batch-size must be at least 1"),
        ("batch_negative", "--batch-size must be at least 1"),
    ],
)
def test_embed_bad_input_gives_a_message_and_writes_nothing(tmp_path, tiny_weights_dir, text, case, message):
    out, extra = tmp_path / "out.hdf5", []
    if case == "binary":
        text.write_bytes(b"\x89HDF\r\n\x1a\n\x00\x00\x00\x00\x00\x08\x08\x00")
    elif case == "latin1":
        text.write_bytes("fine\ncaf\u00e9\n".encode("latin1"))
    elif case == "no_such_dir":
        out = tmp_path / "missing" / "out.hdf5"
    elif case == "output_is_dir":
        out = tmp_path / "results"
        out.mkdir()
    elif case == "unknown_spacy":
        extra = ["--spacy", "no_such_pipeline_xx"]
    else:
        extra = ["--batch-size", "0" if case == "batch_zero" else "-3"]
    files_before = sorted(p.name for p in tmp_path.iterdir())
    code, output = embed(tiny_weights_dir, text, out, *extra)
    assert code == 1 and message in output and "Traceback" not in output, output
    assert sorted(p.name for p in tmp_path.iterdir()) == files_before
