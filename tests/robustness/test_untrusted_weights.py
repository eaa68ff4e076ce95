"""Weight files come from the internet: only plain datasets stored in the file itself are read.

Each crafted weights.hdf5 below is refused through every way a user loads weights (a weights directory,
spacy.load of a saved pipeline, from_bytes), and the bytes of the outside "secret" file never reach the model.
"""
import os

import h5py
import numpy
import pytest
import spacy
import srsly

from spacy_elmo import save_bilm
from spacy_elmo.bilm.options import BiLMOptions
from spacy_elmo.bilm.weights import expected_shapes
from tests.conftest import random_bilm
from tests.robustness.test_weights_files import _load_in_a_limited_child, _options_with

KEY = "CNN_proj/b_proj"  # (projection_dim,) = (8,) in the tiny biLM
SECRET_VALUE = 1234.5  # what the secret file holds, as float32: it must never show up in a model


@pytest.fixture
def secret(tmp_path):
    """A raw file and an HDF5 file outside the weights directory, both full of SECRET_VALUE."""
    raw = tmp_path / "secret" / "private.bin"
    raw.parent.mkdir()
    numpy.full(64, SECRET_VALUE, dtype="<f4").tofile(raw)
    h5 = tmp_path / "secret" / "private.h5"
    with h5py.File(h5, "w") as f:
        f["data"] = numpy.full(8, SECRET_VALUE, dtype="f4")
        f["CNN_proj/W_proj"] = numpy.full((18, 8), SECRET_VALUE, dtype="f4")
        f["CNN_proj/b_proj"] = numpy.full(8, SECRET_VALUE, dtype="f4")
    return raw, h5


def _arrays(weights_file):
    with h5py.File(weights_file, "r") as f:
        out = {}
        f.visititems(lambda name, node: out.__setitem__(name, node[...]) if isinstance(node, h5py.Dataset) else None)
        return out


def _craft(weights_file, kind, secret):
    """Rewrite weights_file: every dataset as before, except KEY (or its group) made the `kind` way."""
    raw, h5 = secret
    arrays = _arrays(weights_file)
    target = arrays[KEY]
    with h5py.File(weights_file, "w") as f:
        for name, array in arrays.items():
            if name == KEY or (kind == "group_external_link" and name.startswith("CNN_proj/")):
                continue
            f[name] = array
        if kind == "external_storage":
            f.create_dataset(KEY, shape=target.shape, dtype="<f4", external=[(str(raw), 0, target.nbytes)])
        elif kind == "external_link":
            f[KEY] = h5py.ExternalLink(str(h5), "/data")
        elif kind == "group_external_link":
            f["CNN_proj"] = h5py.ExternalLink(str(h5), "/CNN_proj")
        elif kind == "soft_link":
            f["stash/b_proj"] = target
            f[KEY] = h5py.SoftLink("/stash/b_proj")
        elif kind == "virtual":
            layout = h5py.VirtualLayout(shape=target.shape, dtype="f4")
            layout[:] = h5py.VirtualSource(str(h5), "data", shape=target.shape)
            f.create_virtual_dataset(KEY, layout)
        elif kind == "unwritten_chunked":
            f.create_dataset(KEY, shape=target.shape, dtype="f4", chunks=(2,))
        elif kind == "partly_written_chunked":
            f.create_dataset(KEY, shape=target.shape, dtype="f4", chunks=(2,))[:2] = 1.0
        elif kind == "unwritten_contiguous":
            f.create_dataset(KEY, shape=target.shape, dtype="f4")
        elif kind == "integer":
            f[KEY] = target.astype("int32")
        elif kind == "plugin_filter":
            f.create_dataset(KEY, data=target, scaleoffset=4)
        else:
            raise AssertionError(kind)


# kind -> what the refusal must say (besides the file and the dataset)
CRAFTED = {
    "external_storage": "keeps its data in an external file",
    "external_link": "an external link to",
    "group_external_link": "reached through 'CNN_proj', an external link",
    "soft_link": "a soft link to /stash/b_proj",
    "virtual": "is a virtual dataset",
    "unwritten_chunked": "declared but never written: 0 of the 4 chunks",
    "partly_written_chunked": "declared but never written: 1 of the 4 chunks",
    "unwritten_contiguous": "declared but never written (the file holds 0 of its 32 bytes)",
    "integer": "has dtype int32; weights must be floating point",
    "plugin_filter": "stored with HDF5 filter(s)",
}


def _nlp(weights_dir):
    nlp = spacy.blank("en")
    nlp.add_pipe("elmo", config={"weights": str(weights_dir), "dtype": "float32"})
    return nlp


def _dataset(kind):
    """The dataset a refusal names: the first one read through the crafted link when the group is linked."""
    return "CNN_proj/W_proj" if kind == "group_external_link" else KEY


def _assert_refusal(message, weights_file, kind):
    assert str(weights_file) in message, message
    assert f"dataset '{_dataset(kind)}'" in message and CRAFTED[kind] in message, message


def _no_secret(data: bytes) -> None:
    assert numpy.float32(SECRET_VALUE).tobytes() not in data


@pytest.mark.parametrize("kind", sorted(CRAFTED))
def test_a_crafted_weights_dir_is_refused_naming_file_dataset_and_rule(tiny_weights_dir, secret, kind):
    weights_file = tiny_weights_dir / "weights.hdf5"
    _craft(weights_file, kind, secret)
    nlp = _nlp(tiny_weights_dir)
    with pytest.raises(ValueError) as err:
        nlp("first use reads the weights")
    _assert_refusal(str(err.value), weights_file, kind)


@pytest.mark.parametrize("kind", ["external_storage", "external_link", "group_external_link", "virtual", "unwritten_chunked", "integer"])
def test_a_saved_pipeline_with_crafted_weights_is_refused_by_spacy_load(tmp_path, tiny_weights_dir, secret, kind):
    _nlp(tiny_weights_dir).to_disk(tmp_path / "pipeline")
    weights_file = tmp_path / "pipeline" / "elmo" / "weights.hdf5"
    _craft(weights_file, kind, secret)
    with pytest.raises(ValueError) as err:
        spacy.load(tmp_path / "pipeline")
    _assert_refusal(str(err.value), weights_file, kind)


@pytest.mark.parametrize("kind", ["external_storage", "external_link", "group_external_link", "virtual", "unwritten_chunked", "integer"])
def test_from_bytes_with_crafted_weights_is_refused_and_the_secret_never_reaches_the_model(tmp_path, tiny_weights_dir, secret, kind):
    nlp = _nlp(tiny_weights_dir)
    pipe = nlp.get_pipe("elmo")
    before = nlp("the component as it was")._.elmo_layers
    genuine = pipe.to_bytes()
    crafted_dir = tmp_path / "crafted"
    save_bilm(random_bilm(), crafted_dir)
    _craft(crafted_dir / "weights.hdf5", kind, secret)
    files = srsly.msgpack_loads(genuine)
    files["weights.hdf5"] = (crafted_dir / "weights.hdf5").read_bytes()
    with pytest.raises(ValueError) as err:
        pipe.from_bytes(srsly.msgpack_dumps(files))
    assert f"dataset '{_dataset(kind)}'" in str(err.value) and CRAFTED[kind] in str(err.value), str(err.value)
    # Saving the pipeline again would have copied the outside file into its own weights.
    after = pipe.to_bytes()
    assert after == genuine
    _no_secret(after)
    _no_secret(nlp.to_bytes())
    numpy.testing.assert_array_equal(nlp("the component as it was")._.elmo_layers, before)


def test_compressed_weights_still_load(tiny_weights_dir):
    """h5repack-style gzip/shuffle chunks are plain data in the file: accepted, with the same features."""
    before = _nlp(tiny_weights_dir)("compressed weights")._.elmo_layers
    arrays = _arrays(tiny_weights_dir / "weights.hdf5")
    with h5py.File(tiny_weights_dir / "weights.hdf5", "w") as f:
        for name, array in arrays.items():
            f.create_dataset(name, data=array, compression="gzip", shuffle=True, fletcher32=True)
    numpy.testing.assert_array_equal(_nlp(tiny_weights_dir)("compressed weights")._.elmo_layers, before)


def _declared_only(weights_dir, **options_changes):
    """weights_dir with a consistent options.json (after options_changes) and a weights.hdf5 in which every
    dataset of the right shape is declared (chunked) and none written: a few KB on disk."""
    _options_with(weights_dir, **options_changes)
    options = BiLMOptions.from_file(weights_dir / "options.json")
    with h5py.File(weights_dir / "weights.hdf5", "w") as f:
        for name, shape in expected_shapes(options).items():
            f.create_dataset(name, shape=shape, dtype="f4", chunks=True)
    assert os.path.getsize(weights_dir / "weights.hdf5") < 200_000
    return weights_dir


def test_declared_but_unwritten_weights_are_refused_before_any_allocation(tmp_path):
    # ~604M parameters (2.4 GB in float32): under the parameter cap, over the child's 2 GB of address space,
    # so building the model first would end in MemoryError rather than in the refusal.
    unwritten = _declared_only(save_bilm(random_bilm(), tmp_path / "unwritten"), lstm__dim=16384, lstm__projection_dim=1024)
    # ~9.7G parameters: over the cap, refused on the count alone.
    over_cap = _declared_only(save_bilm(random_bilm(), tmp_path / "over_cap"), lstm__dim=32768, lstm__projection_dim=8192)
    (unwritten_outcomes, over_cap_outcomes) = _load_in_a_limited_child([unwritten, over_cap])
    for outcome in unwritten_outcomes:
        assert outcome.startswith(("WeightFileError", "ElmoWeightsError")), outcome
        assert str(unwritten / "weights.hdf5") in outcome and "declared but never written" in outcome, outcome
    for outcome in over_cap_outcomes:
        assert outcome.startswith(("WeightFileError", "ElmoWeightsError")), outcome
        assert "over the limit of 1,000,000,000" in outcome and str(over_cap / "weights.hdf5") in outcome, outcome


def test_the_bilm_tf_reference_file_passes_every_rule(bilm_tf_fixtures):
    from spacy_elmo import load_bilm

    bilm = load_bilm(bilm_tf_fixtures / "options.json", bilm_tf_fixtures / "lm_weights.hdf5")
    assert sum(p.numel() for p in bilm.parameters()) > 0
