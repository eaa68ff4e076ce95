"""ElmoComponent.from_bytes on crafted input: the blob's keys never become file names."""
import numpy
import pytest
import spacy
import srsly

from tests.conftest import random_bilm  # noqa: F401  (tiny_weights_dir fixture builds on it)


def _nlp(weights_dir):
    nlp = spacy.blank("en")
    nlp.add_pipe("elmo", config={"weights": str(weights_dir)})
    return nlp


def _genuine_files(nlp) -> dict:
    return srsly.msgpack_loads(nlp.get_pipe("elmo").to_bytes())


@pytest.mark.parametrize("kind", ["absolute", "dotdot"])
def test_from_bytes_never_writes_outside_its_temporary_directory(tiny_weights_dir, tmp_path, kind):
    nlp = _nlp(tiny_weights_dir)
    target = tmp_path / "victim" / "planted.txt"
    target.parent.mkdir()
    files = _genuine_files(nlp)
    # An absolute key replaces the temporary directory in a path join; a relative one climbs out of it.
    key = str(target) if kind == "absolute" else "../" * 12 + str(target).lstrip("/")
    files[key] = b"written by a crafted blob"
    with pytest.raises(ValueError, match="unexpected entries"):
        nlp.get_pipe("elmo").from_bytes(srsly.msgpack_dumps(files))
    assert not target.exists()


def test_from_bytes_rejects_missing_and_malformed_entries(tiny_weights_dir):
    pipe = _nlp(tiny_weights_dir).get_pipe("elmo")
    files = _genuine_files(_nlp(tiny_weights_dir))
    with pytest.raises(ValueError, match="missing weights.hdf5"):
        pipe.from_bytes(srsly.msgpack_dumps({k: v for k, v in files.items() if k != "weights.hdf5"}))
    with pytest.raises(ValueError, match="not bytes"):
        pipe.from_bytes(srsly.msgpack_dumps({**files, "cfg": ["not", "bytes"]}))
    with pytest.raises(ValueError, match="not a serialised 'elmo' component"):
        pipe.from_bytes(b"\xc1 garbage")
    with pytest.raises(ValueError, match="expected a mapping"):
        pipe.from_bytes(srsly.msgpack_dumps([1, 2]))


def test_from_bytes_round_trip_still_works(tiny_weights_dir):
    nlp = _nlp(tiny_weights_dir)
    before = nlp("bytes round trip")._.elmo_layers
    other = _nlp(tiny_weights_dir)
    other.get_pipe("elmo").from_bytes(nlp.get_pipe("elmo").to_bytes())
    numpy.testing.assert_array_equal(other("bytes round trip")._.elmo_layers, before)
