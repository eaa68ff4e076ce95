"""spaCy's own CLI on elmo configs: debug config names a missing weights directory, debug model runs."""
import subprocess
import sys

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


def test_spacy_elmo_help_lists_the_commands():
    result = _run("elmo", "--help")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "pretrain" in result.stdout and "embed" in result.stdout
    listing = _run("--help")
    assert "elmo" in listing.stdout
    alias = subprocess.run([sys.executable, "-m", "spacy_elmo", "--help"], capture_output=True, text=True)
    assert alias.returncode == 0 and "pretrain" in alias.stdout and "embed" in alias.stdout


def test_spacy_elmo_embed_writes_the_vectors(tmp_path, tiny_weights_dir):
    import h5py
    import numpy

    from spacy_elmo import load_bilm

    sentences = tmp_path / "sentences.txt"
    sentences.write_text("The spaCy CLI runs it .\nsecond line\n", encoding="utf8")
    result = _run("elmo", "embed", tiny_weights_dir, sentences, tmp_path / "out.hdf5", "--top")
    assert result.returncode == 0, result.stdout + result.stderr
    bilm = load_bilm(tiny_weights_dir / "options.json", tiny_weights_dir / "weights.hdf5")
    expected = bilm.embed_sentences([["second", "line"]])[0][-1]
    with h5py.File(tmp_path / "out.hdf5", "r") as f:
        numpy.testing.assert_allclose(f["1"][()], expected, atol=1e-6)
