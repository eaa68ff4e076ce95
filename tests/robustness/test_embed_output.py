"""`python -m spacy_elmo embed`: the output appears whole or not at all; inputs are never written."""
import errno
import json
import os
import pathlib
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

    from spacy_elmo.commands import app

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
    assert not _leftovers(tmp_path)  # the rerun removed what the killed run left


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
        ("missing_input", "input file not found"),
        ("two_modes", "choose at most one of --all, --top, --average"),
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
    elif case == "missing_input":
        text = tmp_path / "no_such_input.txt"
    elif case == "two_modes":
        extra = ["--top", "--average"]
    else:
        extra = ["--batch-size", "0" if case == "batch_zero" else "-3"]
    files_before = sorted(p.name for p in tmp_path.iterdir())
    code, output = embed(tiny_weights_dir, text, out, *extra)
    assert code == 1 and message in output and "Traceback" not in output, output
    assert len(output.strip().splitlines()) == 1, output
    assert sorted(p.name for p in tmp_path.iterdir()) == files_before


def _run_child(script: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True)


def _leftovers(directory):
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


@pytest.mark.parametrize("when", ["before_the_biLM_runs", "while_writing"])
def test_a_full_disk_is_one_message_and_leaves_nothing(tmp_path, tiny_weights_dir, text, when):
    """A full disk, simulated with a file-size limit (SIGXFSZ ignored, so writes fail with EFBIG as they fail
    with ENOSPC): one line, exit code 1, no HDF5 tracebacks, no crash, the earlier output untouched."""
    out = tmp_path / "out.hdf5"
    assert embed(tiny_weights_dir, text, out)[0] == 0
    earlier = out.read_bytes()
    vectors = 4 * 16 * 3 * 5 * N_LINES  # float32 x 2*projection x layers x tokens: the least the file needs
    limit = 1000 if when == "before_the_biLM_runs" else vectors + 1000  # the second passes the up-front check
    result = _run_child(f"""
        import resource, signal
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
        from spacy_elmo.cli import main
        main(["embed", {str(tiny_weights_dir)!r}, {str(text)!r}, {str(out)!r}, "--batch-size", "1"])
    """)
    assert result.returncode == 1, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "ulimit -f" in errors[0] and str(out) in errors[0], result.stderr[-3000:]
    assert "Traceback" not in result.stderr and "HDF5" not in result.stderr and "Exception ignored" not in result.stderr
    if when == "while_writing":
        assert "File too large" in errors[0] and "the earlier out.hdf5 is unchanged" in errors[0]
    assert out.read_bytes() == earlier and not _leftovers(tmp_path)


@pytest.mark.parametrize("where, signame", [("computing", "SIGTERM"), ("inside_hdf5_io", "SIGTERM"),
                                            ("computing", "SIGHUP")])
def test_sigterm_removes_the_temporary_file(tmp_path, tiny_weights_dir, text, where, signame):
    """SIGTERM (or SIGHUP: the terminal closed) while the biLM computes, or while HDF5 is in the middle of a
    write (the signal is then raised once HDF5 returns, never inside it): exit 128 + the signal's number, no
    output, no temporary file, no traceback."""
    import signal
    out = tmp_path / "out.hdf5"
    if where == "computing":
        trigger = """
            real = spacy_elmo.BiLM.embed_sentences
            calls = []
            def embed_sentences(self, *args, **kwargs):
                calls.append(1)
                if len(calls) == 2:
                    os.kill(os.getpid(), signal.SIGNAME)
                return real(self, *args, **kwargs)
            spacy_elmo.BiLM.embed_sentences = embed_sentences
        """.replace("SIGNAME", signame)
    else:
        trigger = """
            import io, types
            from spacy_elmo.commands import hdf5_output
            class SignalledFileIO(io.FileIO):
                writes = 0
                def write(self, data):
                    SignalledFileIO.writes += 1
                    if SignalledFileIO.writes == 30:
                        os.kill(os.getpid(), signal.SIGTERM)  # the handler runs while DiskFile is busy
                    return super().write(data)
            hdf5_output.io = types.SimpleNamespace(FileIO=SignalledFileIO)
        """
    result = _run_child(f"""
        import os, signal
        import spacy_elmo
        {textwrap.indent(textwrap.dedent(trigger), " " * 8).strip()}
        from spacy_elmo.cli import main
        main(["embed", {str(tiny_weights_dir)!r}, {str(text)!r}, {str(out)!r}, "--batch-size", "1"])
    """)
    assert result.returncode == 128 + getattr(signal, signame), result.stderr[-3000:]
    assert "Traceback" not in result.stderr and "HDF5" not in result.stderr, result.stderr[-3000:]
    assert not out.exists() and not _leftovers(tmp_path)


def test_a_later_run_removes_what_a_killed_run_left_and_nothing_else(tmp_path, tiny_weights_dir, text):
    from spacy_elmo.commands.hdf5_output import _host

    out = tmp_path / "out.hdf5"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)  # it has exited: its temporary is stale
    stale = tmp_path / f".out.hdf5.{_host()}-{dead_pid}-abc123.tmp"
    live = tmp_path / f".out.hdf5.{_host()}-{os.getpid()}-abc123.tmp"  # this process still runs
    other_host = tmp_path / f".out.hdf5.another-machine-{dead_pid}-abc123.tmp"  # a shared file system
    other_output = tmp_path / f".other.hdf5.{_host()}-{dead_pid}-abc123.tmp"
    for path in (stale, live, other_host, other_output):
        path.write_bytes(b"partial")
    code, output = embed(tiny_weights_dir, text, out)
    assert code == 0 and f"removed {stale}" in output
    assert not stale.exists() and live.exists() and other_host.exists() and other_output.exists()


def test_lines_split_only_on_newline(tmp_path, tiny_weights_dir):
    """A form feed, U+2028, U+0085 or a lone CR inside a line stays in it: dataset i is line i of the file."""
    lines = ["a\x0cb", "c\u2028d e", "f\x85g\rh", "", "last"]
    text = tmp_path / "in.txt"
    text.write_bytes(("\n".join(lines[:2]) + "\r\n" + "\n".join(lines[2:]) + "\n").encode("utf8"))
    out = tmp_path / "out.hdf5"
    assert embed(tiny_weights_dir, text, out, "--top")[0] == 0
    with h5py.File(out, "r") as f:
        assert sorted(k for k in f if k != "sentence_to_index") == ["0", "1", "2", "3", "4"]
        assert [f[str(i)].shape[0] for i in range(5)] == [len(line.split()) for line in lines] == [2, 3, 3, 0, 1]
        index = json.loads(f["sentence_to_index"][0])
    assert index == {line: str(i) for i, line in enumerate(lines)}


@pytest.mark.parametrize("problem", ["nested", "unreadable", "not_an_object"])
def test_a_bad_options_file_is_one_line_naming_it(tmp_path, tiny_weights_dir, text, monkeypatch, problem):
    options = tiny_weights_dir / "options.json"
    if problem == "nested":
        options.write_text("[" * 100_000 + "]" * 100_000, encoding="utf8")
        expected = "nested too deeply"
    elif problem == "not_an_object":
        options.write_text("[1, 2]", encoding="utf8")
        expected = "holds a JSON list"
    else:
        real = pathlib.Path.read_text

        def read_text(self, *args, **kwargs):  # chmod 000 does not stop root, so fail the read itself
            if self.name == "options.json":
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
            return real(self, *args, **kwargs)

        monkeypatch.setattr(pathlib.Path, "read_text", read_text)
        expected = "Cannot read options file"
    code, output = embed(tiny_weights_dir, text, tmp_path / "out.hdf5")
    assert code == 1 and "Traceback" not in output, output
    assert len(output.strip().splitlines()) == 1 and expected in output and str(options) in output, output
    assert not (tmp_path / "out.hdf5").exists()
