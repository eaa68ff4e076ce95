"""Weight files as others on a shared server meet them: the modes they are created with."""
import os
import stat

import pytest
import spacy

from spacy_elmo import save_bilm
from tests.conftest import random_bilm


@pytest.fixture(params=[0o022, 0o002], ids=["umask022", "umask002"])
def umask(request):
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_save_bilm_creates_files_with_the_umask_mode(tmp_path, umask):
    out = save_bilm(random_bilm(), tmp_path / "bilm")
    for name in ("options.json", "weights.hdf5"):
        assert _mode(out / name) == 0o666 & ~umask, name


def test_saved_pipeline_files_have_the_umask_mode(tmp_path, umask):
    weights = save_bilm(random_bilm(), tmp_path / "bilm")
    nlp = spacy.blank("en")
    nlp.add_pipe("elmo", config={"weights": str(weights)})
    nlp.to_disk(tmp_path / "pipeline")
    for name in ("options.json", "weights.hdf5", "cfg"):
        assert _mode(tmp_path / "pipeline" / "elmo" / name) == 0o666 & ~umask, name
