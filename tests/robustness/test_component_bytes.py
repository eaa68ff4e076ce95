"""ElmoComponent.from_bytes on crafted input: the blob's keys never become file names."""
import numpy
import pytest
import spacy
import srsly

from spacy_elmo import save_bilm
from tests.conftest import random_bilm


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


def _state(pipe):
    return pipe.bilm, dict(pipe.cfg), pipe.to_bytes()


def _assert_unchanged(nlp, state, before_layers):
    pipe = nlp.get_pipe("elmo")
    bilm, cfg, data = state
    assert pipe.bilm is bilm and pipe.cfg == cfg and pipe.to_bytes() == data
    numpy.testing.assert_array_equal(nlp("a component that still works")._.elmo_layers, before_layers)


def test_a_refused_from_bytes_leaves_the_component_as_it_was(tmp_path, tiny_weights_dir):
    nlp = spacy.blank("en")
    nlp.add_pipe("elmo", config={"weights": str(tiny_weights_dir), "mix_weights": [0.2, 0.3, 0.5]})
    pipe = nlp.get_pipe("elmo")
    before = nlp("a component that still works")._.elmo_layers
    state = _state(pipe)
    # A biLM with 2 outputs under a cfg of 3 mix weights: refused after both were read.
    other = spacy.blank("en")
    other.add_pipe("elmo", config={"weights": str(save_bilm(random_bilm(seed=3, n_layers=1), tmp_path / "one_layer"))})
    files = srsly.msgpack_loads(other.get_pipe("elmo").to_bytes())
    files["cfg"] = srsly.json_dumps({**pipe.cfg, "mix_gamma": 7.0}).encode("utf8")
    with pytest.raises(ValueError, match="mix_weights has 3 values but the biLM has 2 layers"):
        pipe.from_bytes(srsly.msgpack_dumps(files))
    _assert_unchanged(nlp, state, before)
    # A good cfg with weights that do not load: the cfg is not taken either.
    files = srsly.msgpack_loads(state[2])
    files["cfg"] = srsly.json_dumps({**pipe.cfg, "mix_weights": [1.0, 0.0, 0.0], "dtype": "float32"}).encode("utf8")
    files["weights.hdf5"] = b"not hdf5"
    with pytest.raises(ValueError, match="not a readable HDF5 file"):
        pipe.from_bytes(srsly.msgpack_dumps(files))
    _assert_unchanged(nlp, state, before)


@pytest.mark.parametrize("edit, message", [
    ({"mix_gamma": 1e39}, "mix_gamma is 1e+39; it must be a finite float32 number"),
    ({"mix_weights": [1e39, 0.0, 0.0]}, "mix_weights is [1e+39, 0.0, 0.0]; it must be null or a list of finite float32"),
])
def test_from_bytes_refuses_a_mix_that_is_not_finite_in_float32(tiny_weights_dir, edit, message):
    nlp = _nlp(tiny_weights_dir)
    pipe = nlp.get_pipe("elmo")
    before = nlp("a component that still works")._.elmo_layers
    state = _state(pipe)
    files = srsly.msgpack_loads(state[2])
    files["cfg"] = srsly.json_dumps({**pipe.cfg, **edit}).encode("utf8")
    with pytest.raises(ValueError) as err:
        pipe.from_bytes(srsly.msgpack_dumps(files))
    assert message in str(err.value) and "elmo.from_bytes" in str(err.value)
    _assert_unchanged(nlp, state, before)


@pytest.mark.parametrize("setting", [{"mix_gamma": 1e39}, {"mix_weights": [0.5, -1e39, 0.5]}])
def test_a_mix_that_is_not_finite_is_refused_at_add_pipe(tiny_weights_dir, setting):
    # NaN and inf never get this far: spaCy refuses them in a config (E961).
    with pytest.raises(ValueError, match="finite float32"):
        spacy.blank("en").add_pipe("elmo", config={"weights": str(tiny_weights_dir), **setting})
