"""`python -m spacy_elmo embed`: AllenNLP `elmo` command layout, deterministic, blank lines."""
import json
import re
import subprocess
import sys

import h5py
import numpy
import pytest

from spacy_elmo import load_bilm


@pytest.fixture
def sentences(tmp_path):
    path = tmp_path / "input.txt"
    path.write_text("The cat sat .\n\nELMo 😀 日本語\nThe cat sat .\n" + "a " * 60 + "\n", encoding="utf8")
    return path


def run(*args):
    """In-process through the same typer app as `python -m spacy_elmo` (one test below uses a subprocess)."""
    from typer.testing import CliRunner

    from spacy_elmo.commands import app

    result = CliRunner().invoke(app, ["embed", *map(str, args)])
    assert result.exit_code == 0, result.output
    return result


def test_embed_all_layers_matches_bilm(tmp_path, tiny_weights_dir, sentences):
    out = tmp_path / "out.hdf5"
    result = subprocess.run(
        [sys.executable, "-m", "spacy_elmo", "embed", str(tiny_weights_dir), str(sentences), str(out), "--all", "--batch-size", "2"],
        capture_output=True, text=True, check=True,
    )
    assert "5/5" in result.stderr
    bilm = load_bilm(tiny_weights_dir / "options.json", tiny_weights_dir / "weights.hdf5")
    lines = sentences.read_text(encoding="utf8").splitlines()
    with h5py.File(out, "r") as f:
        assert sorted(k for k in f if k != "sentence_to_index") == ["0", "1", "2", "3", "4"]
        assert f["1"].shape == (3, 0, 16)
        for i in (0, 2, 4):
            # Batched (batch size 2, another process) against alone: float32 GEMMs of different shapes round
            # differently, and this random biLM amplifies that to ~1e-5; a wrong row or layer is off by O(1).
            numpy.testing.assert_allclose(f[str(i)][...], bilm.embed_sentences([lines[i].split()])[0], atol=5e-5, rtol=1e-4)
        index = json.loads(f["sentence_to_index"][0])
        assert index["The cat sat ."] == "3" and index[""] == "1"


def test_progress_bar_shows_the_count_rate_and_eta(tmp_path, tiny_weights_dir, sentences):
    result = run(tiny_weights_dir, sentences, tmp_path / "out.hdf5", "--batch-size", "1")
    final = result.output.replace("\r", "\n").splitlines()
    assert any(re.search(r"^embed: 100%.*\| 5/5 \[\d\d:\d\d<\d\d:\d\d, +[\d.]+ sentences/s\]$", line) for line in final), result.output
    assert final[-1] == f"wrote 5 entries to {tmp_path / 'out.hdf5'}"


def test_top_average_and_determinism(tmp_path, tiny_weights_dir, sentences):
    run(tiny_weights_dir, sentences, tmp_path / "all.hdf5")
    run(tiny_weights_dir, sentences, tmp_path / "top.hdf5", "--top", "--batch-size", "1")
    run(tiny_weights_dir, sentences, tmp_path / "avg.hdf5", "--average")
    with h5py.File(tmp_path / "all.hdf5") as a, h5py.File(tmp_path / "top.hdf5") as t, h5py.File(tmp_path / "avg.hdf5") as m:
        numpy.testing.assert_allclose(t["2"][...], a["2"][-1], atol=1e-5)  # batch size does not matter
        numpy.testing.assert_allclose(m["2"][...], a["2"][...].mean(0), atol=1e-6)
        numpy.testing.assert_array_equal(a["0"][...], a["3"][...])
        assert t["1"].shape == (0, 16)


def test_spacy_tokenizer_and_errors(tmp_path, tiny_weights_dir):
    text = tmp_path / "in.txt"
    text.write_text("Don't stop.\n", encoding="utf8")
    run(tiny_weights_dir, text, tmp_path / "o.hdf5", "--spacy", "en", "--top")
    with h5py.File(tmp_path / "o.hdf5") as f:
        assert f["0"].shape == (4, 16)  # Do n't stop .
    from typer.testing import CliRunner

    from spacy_elmo.commands import app

    missing = CliRunner().invoke(app, ["embed", str(tmp_path / "missing"), str(text), str(tmp_path / "x.hdf5")])
    assert missing.exit_code == 1 and "weights directory not found" in missing.output
    with pytest.raises(AssertionError, match="at most one"):
        run(tiny_weights_dir, text, tmp_path / "x.hdf5", "--top", "--all")


@pytest.mark.parametrize("precision", ["bfloat16", "int8"])
def test_precision_option(tmp_path, tiny_weights_dir, sentences, precision, cpu_features):
    """Where the CPU runs the precision natively the low-precision path runs; where not (always so with
    SPACY_ELMO_CPU_FEATURES=none) the command announces the float32 fallback and writes float32's output."""
    import torch

    from spacy_elmo.bilm.precision import unsupported_reason
    from tests.bilm.test_precision import _mean_cosine

    native = unsupported_reason(precision, torch.device("cpu")) is None
    assert not (cpu_features == "none" and native)
    run(tiny_weights_dir, sentences, tmp_path / "exact.hdf5")
    if native:
        run(tiny_weights_dir, sentences, tmp_path / "low.hdf5", "--precision", precision)
    else:
        with pytest.warns(RuntimeWarning, match=f"precision '{precision}' is not supported.*Running in float32"):
            run(tiny_weights_dir, sentences, tmp_path / "low.hdf5", "--precision", precision)
    with h5py.File(tmp_path / "exact.hdf5") as exact, h5py.File(tmp_path / "low.hdf5") as low:
        if native:
            assert not numpy.array_equal(low["0"][...], exact["0"][...])
            # a random biLM amplifies rounding, so compare directions token by token
            assert all(_mean_cosine(e, g) > 0.98 for e, g in zip(exact["0"][...], low["0"][...]))
        else:
            numpy.testing.assert_array_equal(low["0"][...], exact["0"][...])


def test_unknown_precision_is_a_clear_error(tmp_path, tiny_weights_dir, sentences):
    from typer.testing import CliRunner

    from spacy_elmo.commands import app

    result = CliRunner().invoke(app, ["embed", str(tiny_weights_dir), str(sentences), str(tmp_path / "o.hdf5"), "--precision", "fp8"])
    assert result.exit_code == 1 and "--precision must be one of float32, bfloat16, int8" in result.output
    assert not (tmp_path / "o.hdf5").exists()
