"""Shared fixtures: the bilm-tf reference files from the allennlp==0.9.0 wheel, and tiny random biLMs."""
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest
import torch

from spacy_elmo import BiLM, BiLMOptions, save_bilm

ALLENNLP_WHEEL = "allennlp-0.9.0-py3-none-any.whl"
FIXTURE_MEMBERS = "allennlp/tests/fixtures/elmo/"


def cache_dir() -> Path:
    path = Path(os.environ.get("SPACY_ELMO_TEST_CACHE", Path.home() / ".cache" / "spacy-elmo-tests"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def bilm_tf_fixtures() -> Path:
    """allennlp/tests/fixtures/elmo from the allennlp==0.9.0 wheel (downloaded once through pip, cached).
    Safe under pytest-xdist: each worker downloads and extracts into its own temporary folder and renames it
    into place; a worker that finds the folder already there uses it."""
    root = cache_dir()
    target = root / "allennlp-0.9.0-fixtures"
    if (target / "lm_weights.hdf5").exists():
        return target
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        wheel = root / ALLENNLP_WHEEL
        if not wheel.exists():
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "allennlp==0.9.0", "-d", tmp],
                check=True,
            )
            wheel = Path(tmp) / ALLENNLP_WHEEL
        staged = Path(tmp) / "fixtures"
        staged.mkdir()
        with zipfile.ZipFile(wheel) as archive:
            for name in archive.namelist():
                if name.startswith(FIXTURE_MEMBERS) and not name.endswith("/"):
                    relative = name[len(FIXTURE_MEMBERS) :]
                    if "/" in relative:
                        continue
                    (staged / relative).write_bytes(archive.read(name))
        try:
            staged.rename(target)
        except OSError:  # another worker got there first (or an old partial folder): use what is complete
            if not (target / "lm_weights.hdf5").exists():
                shutil.rmtree(target, ignore_errors=True)
                staged.rename(target)
    return target


def tiny_options(**overrides) -> BiLMOptions:
    settings = dict(
        lstm_dim=24, projection_dim=8, n_layers=2, cell_clip=3.0, proj_clip=3.0, char_dim=4,
        filters=[(1, 4), (2, 6), (3, 8)], n_highway=1, activation="relu", n_characters=262,
    )
    settings.update(overrides)
    return BiLMOptions(**settings)


def random_bilm(seed: int = 0, **overrides) -> BiLM:
    torch.manual_seed(seed)
    bilm = BiLM(tiny_options(**overrides))
    with torch.no_grad():
        for param in bilm.parameters():
            param.normal_(0.0, 0.5)  # large enough that the clipping is exercised
        bilm.char_cnn.char_embed.weight[0] = 0.0
    return bilm.eval()


@pytest.fixture
def tiny_weights_dir(tmp_path) -> Path:
    """A directory with options.json + weights.hdf5 of a tiny random biLM, written by save_bilm."""
    return save_bilm(random_bilm(), tmp_path / "tiny_bilm")


@pytest.fixture(params=["detected", "none"])
def cpu_features(request, monkeypatch) -> str:
    """Runs a test twice: with this CPU's own features, and as on a CPU with none of the precision features
    (SPACY_ELMO_CPU_FEATURES=none), so both the fast paths and the float32 fallbacks are tested on every machine."""
    from spacy_elmo.bilm import precision

    if request.param == "none":
        monkeypatch.setenv(precision.CPU_FEATURES_ENV, "none")
    else:
        monkeypatch.delenv(precision.CPU_FEATURES_ENV, raising=False)
    precision.cpu_flags.cache_clear()
    precision._warn_once.cache_clear()
    yield request.param
    precision.cpu_flags.cache_clear()
    precision._warn_once.cache_clear()
