"""spaCy's own CLI on elmo configs: debug config names a missing weights directory, debug model runs."""
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_training import CONFIGS, _corpora

SPACY = [sys.executable, "-m", "spacy"]


def _run(*args) -> subprocess.CompletedProcess:
    return subprocess.run([*SPACY, *map(str, args)], capture_output=True, text=True)


@pytest.fixture
def corpora(tmp_path):
    return _corpora(tmp_path)


def test_debug_config_names_a_missing_weights_directory(tmp_path, corpora):
    ner, _ = corpora
    missing = tmp_path / "no_such_weights"
    result = _run("debug", "config", CONFIGS / "ner_elmo.cfg", "--paths.train", ner, "--paths.dev", ner,
                  "--paths.elmo_weights", missing)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "ELMo weights not found" in result.stdout
    assert f"ELMo weights directory not found: {missing}" in result.stdout
    assert "--paths.elmo_weights DIR" in result.stdout
    assert "Traceback" not in result.stderr


def test_debug_config_names_an_unset_weights_directory(corpora):
    ner, _ = corpora
    result = _run("debug", "config", CONFIGS / "textcat_elmo.cfg", "--paths.train", ner, "--paths.dev", ner)
    assert result.returncode == 1
    assert "no weights directory is set" in result.stdout


def test_debug_config_passes_with_weights(corpora, tiny_weights_dir):
    ner, _ = corpora
    result = _run("debug", "config", CONFIGS / "ner_elmo.cfg", "--paths.train", ner, "--paths.dev", ner,
                  "--paths.elmo_weights", tiny_weights_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Config is valid" in result.stdout


@pytest.mark.parametrize("component", ["elmo", "ner"])
def test_debug_model_runs(corpora, tiny_weights_dir, component):
    ner, _ = corpora
    result = _run("debug", "model", CONFIGS / "ner_elmo.cfg", component, "--paths.train", ner, "--paths.dev", ner,
                  "--paths.elmo_weights", tiny_weights_dir, "--dimensions", "--print-step1", "--print-step3")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "model looks good" in result.stdout
    if component == "elmo":
        assert "'elmo-bilm'" in result.stdout and "dim nO: 16" in result.stdout
