"""The workflow's first step (scripts/run.py check): a size without a table, or a missing requirement of the
workflow (build, matplotlib), stops it with one line that names the fix, before anything is fetched or written."""
import pytest

from tests.scripts.test_prepare import load_script

run = load_script("run")


def test_a_missing_requirement_names_the_install_command(monkeypatch, capsys):
    run.check("ci")
    assert "requirements are installed: build, matplotlib" in capsys.readouterr().out
    monkeypatch.setitem(run.REQUIREMENTS, "no_such_module_of_the_workflow", "a step that needs it")
    with pytest.raises(SystemExit) as error:
        run.check("ci")
    message = str(error.value)
    assert "needs no_such_module_of_the_workflow (no_such_module_of_the_workflow: a step that needs it)" in message
    assert "-m pip install -e '.[project]'" in message and "\n" not in message


def test_a_size_without_a_table_is_named_with_the_sizes_there_are():
    with pytest.raises(SystemExit, match="Unknown size preset 'small'; choose one of ci, demo, full, gpu"):
        run.check("small")
