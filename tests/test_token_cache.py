"""The `elmo` pipe's token_cache_size: a bounded cache of the char CNN's word vectors for serving."""
import numpy
import pytest
import spacy
import torch

from spacy_elmo.bilm.char_cnn import CharCNNCache
from spacy_elmo.bilm.chars import batch_to_char_ids
from spacy_elmo.layers.bilm_model import BiLMModel
from tests.conftest import random_bilm

# Repeated words across docs and batches, and new words in every doc.
TEXTS = [
    "the cat sat on the mat .",
    "the dog sat on the cat .",
    "a new word appears : zebra",
    "the cat and the zebra met a yak",
    "Yesterday Alice went to Oslo and the cat stayed .",
    "the the the cat cat",
    "quokka wombat the mat",
    "Oslo is cold ; Paris is not",
]


def make_nlp(weights_dir, **config):
    nlp = spacy.blank("en")
    nlp.add_pipe("elmo", config={"weights": str(weights_dir), "dtype": "float32", **config})
    return nlp


def char_cache(nlp) -> CharCNNCache:
    cache = nlp.get_pipe("elmo").bilm.char_cache
    assert isinstance(cache, CharCNNCache)
    return cache


def test_cached_features_equal_uncached_and_the_cache_stays_bounded(tiny_weights_dir):
    plain = [doc._.elmo_layers for doc in make_nlp(tiny_weights_dir).pipe(TEXTS, batch_size=2)]
    nlp = make_nlp(tiny_weights_dir, token_cache_size=9)
    cache = char_cache(nlp)
    assert cache.max_size == 9
    sizes = []
    for _ in range(2):  # the second pass meets words the first evicted and words still cached
        for doc, expected in zip(nlp.pipe(TEXTS, batch_size=2), plain):
            # GEMMs over batches of other shapes round differently: float32 rounding, not equality
            numpy.testing.assert_allclose(doc._.elmo_layers, expected, atol=1e-5)
            sizes.append(len(cache))
    assert max(sizes) == 9 and all(size <= 9 for size in sizes)


def test_off_by_default_and_bad_sizes_are_refused_naming_the_setting(tiny_weights_dir):
    assert make_nlp(tiny_weights_dir).get_pipe("elmo").bilm.char_cache is None
    assert make_nlp(tiny_weights_dir, token_cache_size=0).get_pipe("elmo").bilm.char_cache is None
    with pytest.raises(ValueError, match=r"token_cache_size must be a whole number >= 0 \(0 = off"):
        make_nlp(tiny_weights_dir, token_cache_size=-1)
    for bad in (True, 2.5):  # spaCy's config validation names the setting; the layer itself checks too
        with pytest.raises(ValueError, match="token_cache_size"):
            make_nlp(tiny_weights_dir, token_cache_size=bad)
        with pytest.raises(ValueError, match=r"token_cache_size must be a whole number >= 0"):
            BiLMModel(token_cache_size=bad)


def test_the_weights_loader_path_gets_the_cache(tiny_weights_dir):
    nlp = spacy.blank("en")
    nlp.add_pipe("elmo", config={"token_cache_size": 50})
    nlp.config["initialize"]["components"]["elmo"] = {
        "weights_loader": {"@model_loaders": "spacy-elmo.WeightsLoader.v1", "path": str(tiny_weights_dir)}
    }
    nlp.initialize()
    nlp("the cat sat")
    assert char_cache(nlp).max_size == 50 and len(char_cache(nlp)) == 5  # <S>, </S> and three words


def test_saved_with_the_pipeline_and_turned_on_at_load(tmp_path, tiny_weights_dir):
    expected = [doc._.elmo_layers for doc in make_nlp(tiny_weights_dir).pipe(TEXTS)]
    make_nlp(tiny_weights_dir, token_cache_size=40).to_disk(tmp_path / "with")
    loaded = spacy.load(tmp_path / "with")
    assert char_cache(loaded).max_size == 40 and loaded.get_pipe("elmo").cfg["token_cache_size"] == 40
    make_nlp(tiny_weights_dir).to_disk(tmp_path / "without")
    assert spacy.load(tmp_path / "without").get_pipe("elmo").bilm.char_cache is None
    turned_on = spacy.load(tmp_path / "without", config={"components": {"elmo": {"token_cache_size": 30}}})
    assert char_cache(turned_on).max_size == 30
    for doc, want in zip(turned_on.pipe(TEXTS), expected):
        numpy.testing.assert_allclose(doc._.elmo_layers, want, atol=1e-5)
    assert 0 < len(char_cache(turned_on)) <= 30
    # from_bytes rebuilds the biLM: the receiving pipe's setting applies to it
    receiver = make_nlp(tiny_weights_dir, token_cache_size=20)
    receiver.get_pipe("elmo").from_bytes(make_nlp(tiny_weights_dir).get_pipe("elmo").to_bytes())
    assert char_cache(receiver).max_size == 20


def test_training_mode_and_changed_weights_never_read_stale_vectors():
    ids = torch.as_tensor(batch_to_char_ids([["the", "cat", "sat"], ["the", "dog"]]))
    bilm = random_bilm()
    bilm.char_cache = CharCNNCache(100)
    bilm.train()
    with torch.no_grad():
        bilm(ids)
    assert len(bilm.char_cache) == 0  # training mode bypasses the cache, with or without gradients
    bilm.eval()
    with torch.no_grad():
        bilm(ids)
        assert len(bilm.char_cache) == 6  # <S>, </S> and four word types
        bilm.char_cnn.projection.bias.add_(1.0)  # an update in place, as an optimizer step makes
        cached = bilm(ids).activations
        bilm.char_cache = None
        fresh = bilm(ids).activations
    numpy.testing.assert_allclose(cached.numpy(), fresh.numpy(), atol=1e-5)


def test_spacy_train_with_the_setting_keeps_it_in_the_trained_pipeline(tmp_path, tiny_weights_dir):
    from tests.test_training import _corpora, _train

    ner, _ = _corpora(tmp_path)
    model = _train("ner_elmo.cfg", ner, tiny_weights_dir, tmp_path / "ner", extra=["--components.elmo.token_cache_size", "100"])
    assert "token_cache_size = 100" in (model / "config.cfg").read_text(encoding="utf8")
    nlp = spacy.load(model)
    doc = nlp("Yesterday Alice went to Oslo .")
    assert char_cache(nlp).max_size == 100 and len(char_cache(nlp)) == 8
    assert doc._.elmo_layers.shape == (3, 6, 16)


def test_the_cache_equals_its_encoder_over_many_batches_and_keeps_the_recent_words():
    bilm = random_bilm().eval()
    words = [f"w{i}" for i in range(30)]
    cache = CharCNNCache(8)
    rng = numpy.random.default_rng(0)
    with torch.no_grad():
        for n in (1, 3, 12, 20, 5, 40, 2):  # batches below, at and above the size, with repeats inside them
            ids = torch.as_tensor(batch_to_char_ids([[words[k] for k in rng.integers(0, 30, n)]]))[0]
            numpy.testing.assert_allclose(cache.encode(bilm.char_cnn, ids).numpy(), bilm.char_cnn(ids).numpy(), atol=1e-5)
            assert len(cache) <= 8
        recent = torch.as_tensor(batch_to_char_ids([["w1", "w2"]]))[0]
        cache.encode(bilm.char_cnn, recent)
        cache.encode(bilm.char_cnn, torch.as_tensor(batch_to_char_ids([[f"x{i}" for i in range(6)]]))[0])
        assert {key for key in cache._keys(recent)} <= set(cache._slots)  # 6 new words evicted older ones
        assert len(cache) == 8
    with pytest.raises(ValueError, match="max_size must be a positive integer"):
        CharCNNCache(0)
