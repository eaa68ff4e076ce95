"""ELMoForManyLangs directories without the reference venv: reading, format detection, refusals, round trips.
(tests/bilm/test_manylangs_parity.py compares the numbers with elmoformanylangs itself.)"""
import json
import os
import shutil
import warnings
from pathlib import Path

import numpy
import pytest
import torch

from spacy_elmo import WeightFileError, load_bilm
from spacy_elmo.bilm.formats import detect_format, save_bilm_dir
from spacy_elmo.bilm.manylangs import (
    BUILTIN_CONFIGS,
    ManyLangsBiLM,
    ManyLangsError,
    ManyLangsSpec,
    load_manylangs,
    read_configs,
    read_lexicon,
)

CHARS = ["<pad>", "<oov>", "<bow>", "<eow>", "<bos>", "<eos>", *"abcdefghiklmnorstuwäöüßčž", "北", "京", "欢", "迎", ".", ",", "!"]
WORDS = ["<pad>", "<oov>", "<bos>", "<eos>", "die", "der", "und", "北京", "straße"]


def model_config(word_dim: int = 3, n_highway: int = 1, n_layers: int = 2, max_chars: int = 12) -> dict:
    return {
        "encoder": {"name": "elmo", "projection_dim": 6, "cell_clip": 3, "proj_clip": 3, "dim": 10, "n_layers": n_layers},
        "token_embedder": {"name": "cnn", "activation": "relu", "filters": [[1, 4], [2, 5], [3, 6]], "n_highway": n_highway,
                           "word_dim": word_dim, "char_dim": 4, "max_characters_per_token": max_chars},
        "dropout": 0.1,
    }


def write_random_model(directory: Path, seed: int = 0, **config) -> ManyLangsBiLM:
    """A tiny ELMoForManyLangs model with random weights, written in its format; returns the model."""
    cfg = model_config(**config)
    words = {w: i for i, w in enumerate(WORDS)} if cfg["token_embedder"]["word_dim"] else None
    spec = ManyLangsSpec({"config_path": "model.json"}, cfg, {c: i for i, c in enumerate(CHARS)}, words)
    torch.manual_seed(seed)
    bilm = ManyLangsBiLM(spec)
    with torch.no_grad():
        for param in bilm.parameters():
            param.normal_(0.0, 0.5)
        bilm.char_cnn.char_embed.weight[0] = 0.0
        if bilm.char_cnn.word_embed is not None:
            bilm.char_cnn.word_embed.weight[0] = 0.0
    save_bilm_dir(bilm, directory)
    return bilm.eval()


SENTENCES = [["Die", "Straße", "und", "der", "Übermut", "."], [], ["北京", "欢迎", "你"], ["Donaudampfschifffahrt", "<bos>"]]


@pytest.fixture
def model_dir(tmp_path):
    write_random_model(tmp_path / "model")
    return tmp_path / "model"


def test_load_bilm_of_a_directory_tells_the_format(model_dir, tiny_weights_dir):
    assert detect_format(model_dir) == ("ELMoForManyLangs", None)
    assert detect_format(tiny_weights_dir) == ("bilm-tf", None)
    assert isinstance(load_bilm(model_dir), ManyLangsBiLM)
    assert not isinstance(load_bilm(tiny_weights_dir), ManyLangsBiLM)
    layers = load_bilm(model_dir).embed_sentences(SENTENCES)
    assert [a.shape for a in layers] == [(3, 6, 12), (3, 0, 12), (3, 3, 12), (3, 2, 12)]


def test_saved_and_reloaded_is_bit_identical(model_dir, tmp_path):
    bilm = load_bilm(model_dir)
    save_bilm_dir(bilm, tmp_path / "again")
    again = load_bilm(tmp_path / "again")
    for (name, a), b in zip(bilm.state_dict().items(), again.state_dict().values()):
        assert torch.equal(a, b), name
    for a, b in zip(bilm.embed_sentences(SENTENCES), again.embed_sentences(SENTENCES)):
        numpy.testing.assert_array_equal(a, b)


def test_batching_does_not_change_the_layers(model_dir):
    bilm = load_bilm(model_dir)
    whole = bilm.embed_sentences(SENTENCES, batch_size=64)
    for a, b in zip(whole, bilm.embed_sentences(SENTENCES, batch_size=1)):
        numpy.testing.assert_allclose(a, b, atol=1e-6)


def test_its_tokenisation_quirks(model_dir):
    bilm = load_bilm(model_dir)
    chars = bilm.spec.chars
    long_word, = bilm.token_ids([["abcdefghiklmno"]])[0]
    # cut to max_characters_per_token - 2 = 10 characters, framed by the swapped marks; the word is looked up cut
    assert long_word[1] == chars["<eow>"] + 1 and long_word[12] == chars["<bow>"] + 1
    assert list(long_word[2:12]) == [chars[c] + 1 for c in "abcdefghik"]
    assert long_word[0] == bilm.spec.words["<oov>"] + 1
    boundary, unknown = bilm.token_ids([["<bos>", "Q"]])[0]
    assert list(boundary[:5]) == [bilm.spec.words["<bos>"] + 1, chars["<eow>"] + 1, chars["<bos>"] + 1, chars["<bow>"] + 1, chars["<pad>"] + 1]
    assert unknown[0] == bilm.spec.words["<oov>"] + 1 and unknown[2] == chars["<oov>"] + 1
    assert torch.equal(bilm.bos_ids, torch.as_tensor(boundary))


def test_a_lone_id_on_a_dic_line_is_the_ideographic_space(tmp_path):
    path = tmp_path / "char.dic"
    path.write_text("<pad>\t0\n<oov>\t1\n\u3000\t2\nx\t3\n", encoding="utf-8")
    assert read_lexicon(path, ["<pad>"]) == {"<pad>": 0, "<oov>": 1, "\u3000": 2, "x": 3}


@pytest.mark.parametrize("text, problem", [
    ("<pad>\t0\nx\ty\n", "line 2: 'x\\ty' is not TOKEN<TAB>ID"),
    ("<pad>\t0\n\n", "line 2: '' is not TOKEN<TAB>ID"),
    ("<pad>\t0\na\tb\t3\n", "line 2"),
    ("<pad>\t-1\n", "id -1 is out of range"),
    ("<oov>\t0\n", "has no <pad>"),
])
def test_a_malformed_dic_is_refused_with_its_line(tmp_path, text, problem):
    path = tmp_path / "word.dic"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ManyLangsError, match="word.dic") as err:
        read_lexicon(path, ["<pad>"])
    assert problem in str(err.value)


def test_a_dic_that_is_not_utf8_is_refused(model_dir):
    (model_dir / "char.dic").write_bytes(b"<pad>\t0\n\xff\xfe\t1\n")
    with pytest.raises(ManyLangsError, match="char.dic is not UTF-8 text"):
        load_bilm(model_dir)


def test_published_archives_use_the_config_elmoformanylangs_ships(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"config_path": "/home/someone/cnn_50_100_512_4096_sample.json"}))
    run, model = read_configs(tmp_path)
    assert model == BUILTIN_CONFIGS["cnn_50_100_512_4096_sample.json"]
    assert model["encoder"]["dim"] == 4096 and model["token_embedder"]["char_dim"] == 50


def test_config_path_never_reads_outside_the_model_directory(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (tmp_path / "secret.json").write_text(json.dumps(model_config()))
    (model / "config.json").write_text(json.dumps({"config_path": "../secret.json"}))
    with pytest.raises(ManyLangsError, match="not a file in") as err:
        read_configs(model)
    assert "set config_path to its file name" in str(err.value)
    (model / "config.json").write_text(json.dumps({"config_path": str(tmp_path / "secret.json")}))
    with pytest.raises(ManyLangsError, match="not a file in"):
        read_configs(model)
    shutil.copy(tmp_path / "secret.json", model / "secret.json")  # the same name inside the directory is read
    assert read_configs(model)[1] == model_config()


@pytest.mark.parametrize("change, problem", [
    (lambda c: c["encoder"].update(name="lstm"), "only the 'elmo' encoder"),
    (lambda c: c["token_embedder"].update(name="lstm"), "only the 'cnn' token embedder"),
    (lambda c: c["token_embedder"].update(char_dim=0), "without a character encoder"),
    (lambda c: c["token_embedder"].pop("filters"), "missing setting 'filters'"),
    (lambda c: c["encoder"].update(dim=10**9), "lstm.dim is 1000000000"),
    (lambda c: c["token_embedder"].update(filters="wide"), "char_cnn.filters entry 'w' is not [width, number_of_filters]"),
    (lambda c: c["encoder"].update(n_layers="two"), "malformed setting (invalid literal for int()"),
])
def test_an_unsupported_model_config_is_refused(model_dir, change, problem):
    config = json.loads((model_dir / "model_config.json").read_text())
    change(config)
    (model_dir / "model_config.json").write_text(json.dumps(config))
    with pytest.raises(ManyLangsError) as err:
        load_bilm(model_dir)
    assert problem in str(err.value)


def test_weights_that_do_not_fit_the_config_are_refused(model_dir):
    state = torch.load(model_dir / "encoder.pkl", weights_only=True)
    state["forward_layer_0.state_projection.weight"] = torch.zeros(6, 11)
    torch.save(state, model_dir / "encoder.pkl")
    with pytest.raises(ManyLangsError, match=r"'forward_layer_0.state_projection.weight' has shape \(6, 11\)"):
        load_bilm(model_dir)
    del state["forward_layer_0.state_projection.weight"]
    state["extra"] = torch.zeros(1)
    torch.save(state, model_dir / "encoder.pkl")
    with pytest.raises(ManyLangsError, match="missing forward_layer_0.state_projection.weight; unexpected extra"):
        load_bilm(model_dir)


def test_a_vocabulary_of_another_size_is_refused(model_dir):
    with open(model_dir / "word.dic", "a", encoding="utf-8") as f:
        f.write("neu\t9\n")
    with pytest.raises(ManyLangsError, match=r"word_emb_layer.embedding.weight' has shape \(9, 3\).*\(10, 3\)"):
        load_bilm(model_dir)


class Payload:
    """Unpickling this would run os.system; weights_only refuses it before anything runs."""
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_with_code_in_it_is_refused_and_never_run(model_dir, tmp_path):
    marker = tmp_path / "ran"
    state = torch.load(model_dir / "token_embedder.pkl", weights_only=True)
    state["projection.bias"] = Payload(str(marker))
    torch.save(state, model_dir / "token_embedder.pkl")
    with pytest.raises(ManyLangsError, match="token_embedder.pkl is not a readable torch state dict of tensors"):
        load_bilm(model_dir)
    assert not marker.exists()


def test_an_oversized_or_damaged_pickle_is_refused(model_dir):
    (model_dir / "encoder.pkl").write_bytes(b"not a pickle")
    with pytest.raises(ManyLangsError, match="encoder.pkl is not a readable torch state dict"):
        load_bilm(model_dir)
    (model_dir / "encoder.pkl").write_bytes(b"\0" * (17 << 20))
    with pytest.raises(ManyLangsError, match="more than the model config and vocabularies call for"):
        load_bilm(model_dir)


def test_nan_weights_are_refused(model_dir):
    state = torch.load(model_dir / "token_embedder.pkl", weights_only=True)
    state["projection.bias"][0] = float("nan")
    torch.save(state, model_dir / "token_embedder.pkl")
    with pytest.raises(ManyLangsError, match="'projection.bias' contains NaN"):
        load_bilm(model_dir)


def test_a_legacy_pickle_loads(model_dir):
    """The published files were written by torch 0.4, before the zip format."""
    before = load_bilm(model_dir).embed_sentences(SENTENCES)
    for name in ("token_embedder.pkl", "encoder.pkl"):
        state = torch.load(model_dir / name, weights_only=True)
        torch.save(state, model_dir / name, _use_new_zipfile_serialization=False)
    for a, b in zip(before, load_bilm(model_dir).embed_sentences(SENTENCES)):
        numpy.testing.assert_array_equal(a, b)


def test_a_model_without_word_embedding_needs_no_word_dic(tmp_path):
    write_random_model(tmp_path / "m", word_dim=0)
    assert not (tmp_path / "m" / "word.dic").exists()
    assert load_bilm(tmp_path / "m").embed_sentences([["ein", "Test"]])[0].shape == (3, 2, 12)


def test_a_directory_of_neither_format_names_what_it_found_and_what_each_needs(tmp_path, model_dir, tiny_weights_dir):
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "model.bin").write_bytes(b"x")
    with pytest.raises(WeightFileError) as err:
        load_bilm(tmp_path / "other")
    message = str(err.value)
    assert "holds no ELMo model (found: model.bin)" in message
    assert "options.json and weights.hdf5" in message and "config.json, char.dic, word.dic, token_embedder.pkl and encoder.pkl" in message
    (model_dir / "encoder.pkl").unlink()
    with pytest.raises(WeightFileError, match="looks like an ELMoForManyLangs model but has no encoder.pkl"):
        load_bilm(model_dir)
    both = tmp_path / "both"
    shutil.copytree(tiny_weights_dir, both)
    write_random_model(both)
    with pytest.raises(WeightFileError, match="holds both a bilm-tf biLM"):
        load_bilm(both)


def test_a_damaged_save_is_not_taken_for_a_model(tmp_path, model_dir):
    """config.json is written last: a copy without it is no ELMoForManyLangs model."""
    (model_dir / "config.json").unlink()
    assert detect_format(model_dir)[0] is None
    assert "has no config.json" in detect_format(model_dir)[1]


@pytest.mark.parametrize("precision", ["bfloat16", "int8"])
def test_lower_precisions_run(model_dir, precision):
    exact = load_bilm(model_dir).embed_sentences(SENTENCES)
    with warnings.catch_warnings():  # a precision this CPU cannot run warns and runs float32
        warnings.simplefilter("ignore")
        low = load_bilm(model_dir, precision=precision).embed_sentences(SENTENCES)
    for a, b in zip(exact, low):
        assert a.shape == b.shape and (a.size == 0 or numpy.abs(a - b).max() < 0.5)


def test_load_manylangs_is_what_load_bilm_returns(model_dir):
    a, b = load_manylangs(model_dir), load_bilm(model_dir)
    for x, y in zip(a.embed_sentences(SENTENCES), b.embed_sentences(SENTENCES)):
        numpy.testing.assert_array_equal(x, y)


def test_save_bilm_refuses_a_manylangs_model_and_names_save_bilm_dir(model_dir, tmp_path):
    from spacy_elmo import save_bilm

    with pytest.raises(WeightFileError, match="use save_bilm_dir"):
        save_bilm(load_bilm(model_dir), tmp_path / "out")
    assert not (tmp_path / "out" / "weights.hdf5").exists()
