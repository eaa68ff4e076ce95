"""The biLM as a Thinc layer: inputs, serialisation bit for bit, devices and precision through Thinc."""
import numpy
import pytest
import spacy
import torch
from thinc.api import Model, NumpyOps, use_ops

from spacy_elmo import load_bilm
from spacy_elmo.layers import BiLMModel, get_bilm, set_bilm
from spacy_elmo.loading import ElmoWeightsError
from tests.conftest import random_bilm

WORDS = [["The", "biLM", "as", "a", "layer", "."], ["Two"], []]


def _params(model: Model):
    return {name: tensor.detach().clone() for name, tensor in get_bilm(model).state_dict().items()}


def _assert_same_params(a: Model, b: Model) -> None:
    pa, pb = _params(a), _params(b)
    assert pa.keys() == pb.keys()
    for name in pa:
        assert torch.equal(pa[name], pb[name]), name  # bit for bit


def test_outputs_match_embed_sentences_for_docs_spans_and_token_lists():
    bilm = random_bilm()
    model = BiLMModel(bilm)
    assert model.get_dim("nO") == 16 and model.get_dim("nL") == 3
    doc = spacy.blank("en")("The biLM as a layer .")
    expected = bilm.embed_sentences(WORDS)
    Y = model.predict([doc, doc[0:1], *WORDS])
    # The same sentences in another batch: fp32 rounding only (GEMM blocking follows the batch's shape; 1.4e-6 seen on
    # a Zen 4 CPU at values near 1), while a wrong order, mask or alignment would be off by ~0.1 or more.
    close = {"rtol": 1e-5, "atol": 1e-5}
    numpy.testing.assert_allclose(Y[0], expected[0], **close)
    numpy.testing.assert_allclose(Y[1], bilm.embed_sentences([["The"]])[0], **close)
    for y, e in zip(Y[2:], expected):
        assert y.shape == e.shape
        numpy.testing.assert_allclose(y, e, **close)
    with pytest.raises(TypeError, match="not a string"):
        model.predict(["a whole sentence"])


def test_bytes_round_trip_is_bit_for_bit_into_an_empty_layer():
    model = BiLMModel(random_bilm(seed=3))
    empty = BiLMModel()
    assert get_bilm(empty) is None
    empty.from_bytes(model.to_bytes())
    _assert_same_params(model, empty)
    assert empty.get_dim("nO") == 16
    numpy.testing.assert_array_equal(empty.predict(WORDS[:2])[0], model.predict(WORDS[:2])[0])


def test_disk_round_trip_is_bit_for_bit(tmp_path):
    model = BiLMModel(random_bilm(seed=4), precision="float32")
    model.to_disk(tmp_path / "bilm.bin")
    loaded = BiLMModel().from_disk(tmp_path / "bilm.bin")
    _assert_same_params(model, loaded)
    numpy.testing.assert_array_equal(loaded.predict(WORDS[:1])[0], model.predict(WORDS[:1])[0])


def test_the_shim_bytes_are_the_interchange_files_not_a_torch_pickle(tmp_path):
    import srsly

    model = BiLMModel(random_bilm())
    shim = srsly.msgpack_loads(model.shims[0].to_bytes())
    assert sorted(shim["files"]) == ["options.json", "weights.hdf5"]
    for name, data in shim["files"].items():
        (tmp_path / name).write_bytes(data)
    lifted = load_bilm(tmp_path / "options.json", tmp_path / "weights.hdf5")
    _assert_same_params(model, BiLMModel(lifted))


def test_pipe_model_round_trips_through_the_pipeline(tmp_path, tiny_weights_dir):
    nlp = spacy.blank("en")
    nlp.add_pipe("elmo", config={"weights": str(tiny_weights_dir), "dtype": "float32"})
    model = nlp.get_pipe("elmo").model
    assert isinstance(model, Model) and model.name == "elmo-bilm"
    before = nlp("pipeline round trip")._.elmo_layers
    nlp.to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")
    _assert_same_params(model, loaded.get_pipe("elmo").model)
    again = BiLMModel().from_bytes(loaded.get_pipe("elmo").model.to_bytes())
    _assert_same_params(model, again)
    numpy.testing.assert_array_equal(loaded("pipeline round trip")._.elmo_layers, before)


def test_device_follows_thinc_and_precision_survives_moves():
    with use_ops("numpy"):
        model = BiLMModel(random_bilm(), precision="bfloat16")
    assert isinstance(model.ops, NumpyOps)
    assert get_bilm(model).bos_ids.device.type == "cpu"
    expected = get_bilm(model).precision  # bfloat16 where this CPU has it, else float32 (warned)
    model.to_cpu()  # Thinc's device move reaches the shim; precision is re-applied for the device
    assert get_bilm(model).precision == expected
    empty = BiLMModel(precision="bfloat16")
    empty.from_bytes(model.to_bytes())
    assert get_bilm(empty).precision == expected


def test_a_layer_without_weights_says_where_they_come_from():
    model = BiLMModel()
    with pytest.raises(ElmoWeightsError, match="weights_loader"):
        model.initialize()
    with pytest.raises(ElmoWeightsError, match="no weights yet"):
        model.predict(WORDS)
    set_bilm(model, random_bilm())
    model.initialize()
    assert model.predict(WORDS[:1])[0].shape == (3, 6, 16)
