"""Every `spacy elmo` command reports a failure the user can fix as one line on stderr, exit code 1;
--verbose or SPACY_ELMO_VERBOSE=1 adds the traceback. The CLI package has no import cycles."""
import ast
import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from spacy_elmo.commands.errors import describe

PACKAGE = Path(__file__).resolve().parents[2] / "spacy_elmo"


def _elmo(*args, env=None):
    return subprocess.run([sys.executable, "-m", "spacy_elmo", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, **(env or {})})


@pytest.fixture
def missing_weights(tmp_path):
    text = tmp_path / "in.txt"
    text.write_text("a b c\n", encoding="utf8")
    return [tmp_path / "no_such_weights", text, tmp_path / "out.hdf5"]


def test_a_known_failure_is_one_line_with_exit_code_1(missing_weights):
    result = _elmo("embed", *missing_weights)
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"error: ELMo weights directory not found: {missing_weights[0]}. It must be a directory holding "
        "options.json and weights.hdf5."]
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize("how", ["group_option", "command_option", "environment"])
def test_verbose_shows_the_traceback(missing_weights, how):
    args, env = ["embed", *missing_weights], None
    if how == "group_option":
        args = ["--verbose", *args]
    elif how == "command_option":
        args = [*args, "--verbose"]
    else:
        env = {"SPACY_ELMO_VERBOSE": "1"}
    result = _elmo(*args, env=env)
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "ElmoWeightsError" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: ELMo weights directory not found")


@pytest.mark.parametrize("code, words", [
    (errno.ENOSPC, "No space left on device; free some space"),
    (errno.EFBIG, "File too large; the file system's or this process's file-size limit (ulimit -f)"),
    (errno.EACCES, "Permission denied; check the path's permissions"),
    (errno.EROFS, "Read-only file system; choose a writable location"),
])
def test_os_errors_name_the_file_the_problem_and_the_fix(code, words):
    message = describe(OSError(code, os.strerror(code), "/data/out.hdf5"))
    assert message.startswith("/data/out.hdf5: ") and words in message and "\n" not in message


def test_config_errors_are_one_line():
    from thinc.api import Config

    with pytest.raises(Exception) as caught:
        Config().from_str("[training]\nmax_steps = 1\n[broken\n")
    message = describe(caught.value)
    assert message.startswith("Config validation error") and "[broken" in message and "\n" not in message


def test_a_bug_keeps_its_traceback():
    assert describe(ZeroDivisionError("x")) is None and describe(RecursionError()) is None


def _imports(path: Path, module: str):
    """Modules of spacy_elmo that the file at `path` imports, at module level or inside functions."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf8"))):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.startswith("spacy_elmo"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            if base.startswith("spacy_elmo"):
                yield base
                yield from (f"{base}.{a.name}" for a in node.names)


def _cli_cycles(package: Path):
    modules = {}
    for path in package.rglob("*.py"):
        name = ".".join(path.relative_to(package.parent).with_suffix("").parts)
        modules[name.removesuffix(".__init__")] = path
    graph = {m: {i for i in _imports(p, m) if i in modules and i != m} for m, p in modules.items()}

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            node = todo.pop()
            if node == goal:
                return True
            if node not in seen:
                seen.add(node)
                todo.extend(graph[node])
        return False

    cli_side = [m for m in modules if m == "spacy_elmo.cli" or m.startswith("spacy_elmo.commands")]
    return [(m, i) for m in cli_side for i in graph[m] if reaches(i, m)]


def test_the_cli_has_no_import_cycle():
    """cli.py wires the app up; the command modules never import cli.py (they add themselves to commands.app)."""
    assert not _cli_cycles(PACKAGE)


def test_the_three_entry_points_list_the_commands():
    for command in ([sys.executable, "-m", "spacy_elmo"], [sys.executable, "-m", "spacy", "elmo"],
                    [str(Path(sys.executable).with_name("spacy-elmo"))]):
        result = subprocess.run([*command, "--help"], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        assert all(name in result.stdout for name in ("embed", "pretrain", "--verbose")), result.stdout
