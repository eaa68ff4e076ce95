"""The `elmo` pipe through spaCy's public interface, on a tiny random biLM."""
import pickle
import shutil

import numpy
import pytest
import spacy
from spacy.tokens import Doc, DocBin

from spacy_elmo import load_bilm
from spacy_elmo.component import ElmoComponent
from tests.conftest import random_bilm  # noqa: F401  (tiny_weights_dir fixture builds on it)


def make_nlp(weights_dir, **config):
    nlp = spacy.blank("en")
    nlp.add_pipe("elmo", config={"weights": str(weights_dir), **config})
    return nlp


def reference(weights_dir, words_list):
    bilm = load_bilm(weights_dir / "options.json", weights_dir / "weights.hdf5")
    return bilm.embed_sentences(words_list)


def test_features_match_the_bilm(tiny_weights_dir):
    nlp = make_nlp(tiny_weights_dir, dtype="float32")
    doc = nlp("The quick brown fox jumps over the lazy dog .")
    ref = reference(tiny_weights_dir, [[t.text for t in doc]])[0]
    assert doc._.elmo_layers.shape == (3, len(doc), 16) and doc._.elmo_layers.dtype == numpy.float32
    numpy.testing.assert_allclose(doc._.elmo_layers, ref, atol=1e-6)
    numpy.testing.assert_allclose(doc._.elmo, ref.mean(0), atol=1e-6)
    numpy.testing.assert_allclose(doc[3]._.elmo, ref.mean(0)[3], atol=1e-6)
    numpy.testing.assert_allclose(doc[2:5]._.elmo, ref.mean(0)[2:5].mean(0), atol=1e-6)


def test_float16_storage_and_custom_mix(tiny_weights_dir):
    nlp = make_nlp(tiny_weights_dir, dtype="float16", mix_weights=[0.0, 0.25, 0.75], mix_gamma=2.0)
    doc = nlp("Mixing layers with fixed weights")
    ref = reference(tiny_weights_dir, [[t.text for t in doc]])[0]
    assert doc._.elmo_layers.dtype == numpy.float16
    numpy.testing.assert_allclose(doc._.elmo_layers.astype("f"), ref, atol=2e-3)
    numpy.testing.assert_allclose(doc._.elmo, 2.0 * (0.25 * ref[1] + 0.75 * ref[2]), atol=1e-2)
    assert doc._.elmo.dtype == numpy.float32
    assert doc._.elmo_layers.nbytes / len(doc) == 3 * 16 * 2  # bytes per token: L x D x 2


def test_mix_weights_must_match_layers(tiny_weights_dir):
    nlp = make_nlp(tiny_weights_dir, mix_weights=[0.5, 0.5])
    with pytest.raises(ValueError, match="3 layers"):
        nlp("the weights are read at first use")


def _first_use_error(config):
    """add_pipe only records the directory (spacy.load must not read it); the first use reads it."""
    nlp = spacy.blank("en")
    nlp.add_pipe("elmo", config=config)
    with pytest.raises(ValueError) as call_error:
        nlp("first use")
    with pytest.raises(ValueError) as init_error:
        nlp.initialize()
    assert str(call_error.value) == str(init_error.value)
    return str(call_error.value)


def test_missing_or_wrong_weights_fail_at_first_use_naming_the_fix(tmp_path, tiny_weights_dir):
    message = _first_use_error({"weights": str(tmp_path / "nowhere")})
    assert "not found" in message and "options.json" in message and "`weights` setting" in message
    message = _first_use_error({})
    assert "has no weights" in message and "spacy-elmo.WeightsLoader.v1" in message and "frozen_components" in message
    (tmp_path / "half").mkdir()
    shutil.copy(tiny_weights_dir / "options.json", tmp_path / "half")
    assert "no weights.hdf5" in _first_use_error({"weights": str(tmp_path / "half")})
    (tmp_path / "half" / "weights.hdf5").write_bytes(b"not hdf5")
    assert "Cannot load ELMo weights" in _first_use_error({"weights": str(tmp_path / "half")})


def test_vector_hooks_are_opt_in(tiny_weights_dir):
    plain = make_nlp(tiny_weights_dir)("cats and dogs")
    assert plain.vector.shape != (16,)
    doc = make_nlp(tiny_weights_dir, vector_hooks=True)("cats and dogs")
    numpy.testing.assert_allclose(doc.vector, doc._.elmo.mean(0), atol=1e-5)
    numpy.testing.assert_allclose(doc[0].vector, doc[0]._.elmo)
    numpy.testing.assert_allclose(doc[0:2].vector, doc[0:2]._.elmo)
    assert doc.has_vector and doc[0].has_vector
    assert -1.0 <= doc[0].similarity(doc[2]) <= 1.0
    assert doc.similarity(doc) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize(
    "text",
    ["", "   ", "\n\n", "😀 🎉 👍🏽", "日本語 の テキスト 中文", "x" * 120 + " " + "é" * 40, "a  \t b"],
)
def test_odd_text_gives_well_formed_features(tiny_weights_dir, text):
    nlp = make_nlp(tiny_weights_dir)
    doc = nlp(text)
    assert doc._.elmo_layers.shape == (3, len(doc), 16)
    assert numpy.isfinite(doc._.elmo_layers).all()
    assert doc._.elmo.shape == (len(doc), 16)
    assert all(t._.elmo.shape == (16,) for t in doc)
    assert doc[:]._.elmo.shape == (16,) and numpy.isfinite(doc[:]._.elmo).all()
    if len(doc):
        assert numpy.abs(doc._.elmo_layers).sum() > 0


def test_save_load_round_trip_without_original_weights(tmp_path, tiny_weights_dir):
    weights = tmp_path / "moving_weights"
    shutil.copytree(tiny_weights_dir, weights)
    nlp = make_nlp(weights, mix_weights=[0.2, 0.3, 0.5])
    texts = ["Round trips keep outputs .", "Second doc here"]
    before = [doc._.elmo_layers for doc in nlp.pipe(texts)]
    nlp.to_disk(tmp_path / "pipeline")
    shutil.rmtree(weights)
    loaded = spacy.load(tmp_path / "pipeline")
    after = list(loaded.pipe(texts))
    for b, doc in zip(before, after):
        numpy.testing.assert_array_equal(b, doc._.elmo_layers)
    assert after[0]._.elmo_mix["weights"] == pytest.approx([0.2, 0.3, 0.5])
    # The weights sit in the interchange layout and can be lifted out.
    lifted = load_bilm(tmp_path / "pipeline" / "elmo" / "options.json", tmp_path / "pipeline" / "elmo" / "weights.hdf5")
    numpy.testing.assert_allclose(lifted.embed_sentences([[t.text for t in after[0]]])[0], after[0]._.elmo_layers, atol=2e-3)
    # to_bytes / from_bytes too
    again = spacy.blank("en").from_config(loaded.config)  # weights path in the config is gone: deferred
    again.from_bytes(loaded.to_bytes())
    numpy.testing.assert_array_equal(again(texts[0])._.elmo_layers, before[0])


def test_docs_serialise_with_their_features(tiny_weights_dir):
    nlp = make_nlp(tiny_weights_dir, vector_hooks=True)
    docs = list(nlp.pipe(["one two three", "four five"]))
    unpickled = pickle.loads(pickle.dumps(docs[0]))
    numpy.testing.assert_array_equal(unpickled._.elmo_layers, docs[0]._.elmo_layers)
    numpy.testing.assert_array_equal(unpickled._.elmo, docs[0]._.elmo)
    numpy.testing.assert_array_equal(unpickled.vector, docs[0].vector)
    restored = list(DocBin(docs=docs, store_user_data=True).from_bytes(DocBin(docs=docs, store_user_data=True).to_bytes()).get_docs(nlp.vocab))
    for doc, back in zip(docs, restored):
        numpy.testing.assert_array_equal(back._.elmo_layers, doc._.elmo_layers)
        numpy.testing.assert_array_equal(back[1]._.elmo, doc[1]._.elmo)


def test_n_process_2(tiny_weights_dir):
    nlp = make_nlp(tiny_weights_dir)
    texts = [f"sentence number {i} with some words" for i in range(12)]
    single = [doc._.elmo_layers for doc in nlp.pipe(texts)]
    multi = [doc._.elmo_layers for doc in nlp.pipe(texts, n_process=2, batch_size=4)]
    for a, b in zip(single, multi):
        numpy.testing.assert_array_equal(a, b)


def _record_batches(elmo: ElmoComponent):
    shapes = []
    original = elmo.bilm.forward

    def forward(char_ids):
        shapes.append(tuple(char_ids.shape[:2]))
        return original(char_ids)

    elmo.bilm.forward = forward
    return shapes


def test_pipe_batches_by_token_budget_sorted_by_length(tiny_weights_dir):
    nlp = make_nlp(tiny_weights_dir, token_budget=40)
    shapes = _record_batches(nlp.get_pipe("elmo"))
    texts = [" ".join(["w"] * n) for n in (3, 17, 5, 9, 2, 11, 4, 8)]
    docs = list(nlp.pipe(texts))
    assert all(rows * width <= 40 for rows, width in shapes)
    widths = [width for _, width in shapes]
    assert widths == sorted(widths, reverse=True)
    ref = reference(tiny_weights_dir, [t.split() for t in texts])
    for doc, r in zip(docs, ref):
        numpy.testing.assert_allclose(doc._.elmo_layers.astype("f"), r, atol=2e-3)


def test_long_doc_uses_sentences_when_set(tiny_weights_dir):
    nlp = make_nlp(tiny_weights_dir, dtype="float32", get_spans={"@span_getters": "spacy-elmo.long_doc_spans.v1", "max_length": 20, "window": 8, "stride": 6})
    words = [f"w{i}" for i in range(30)]
    doc = Doc(nlp.vocab, words=words, sent_starts=[i % 10 == 0 for i in range(30)])
    nlp(doc)
    ref = reference(tiny_weights_dir, [words[0:10], words[10:20], words[20:30]])
    numpy.testing.assert_allclose(doc._.elmo_layers, numpy.concatenate(ref, axis=1), atol=1e-6)
    short = nlp(Doc(nlp.vocab, words=words[:15], sent_starts=[i % 5 == 0 for i in range(15)]))
    numpy.testing.assert_allclose(short._.elmo_layers, reference(tiny_weights_dir, [words[:15]])[0], atol=1e-6)


def test_long_doc_without_sentences_uses_overlapping_windows(tiny_weights_dir):
    getter = {"@span_getters": "spacy-elmo.strided_spans.v1", "window": 8, "stride": 6}
    nlp = make_nlp(tiny_weights_dir, dtype="float32", get_spans=getter)
    words = [f"t{i}" for i in range(14)]
    doc = nlp(Doc(nlp.vocab, words=words))
    a, b = reference(tiny_weights_dir, [words[0:8], words[6:14]])  # windows [0, 8) and [6, 14)
    numpy.testing.assert_allclose(doc._.elmo_layers[:, :6], a[:, :6], atol=1e-6)
    numpy.testing.assert_allclose(doc._.elmo_layers[:, 6:8], (a[:, 6:8] + b[:, :2]) / 2, atol=1e-6)
    numpy.testing.assert_allclose(doc._.elmo_layers[:, 8:14], b[:, 2:8], atol=1e-6)


def test_100k_token_doc_in_bounded_batches(tiny_weights_dir):
    nlp = make_nlp(tiny_weights_dir, token_budget=8192)
    shapes = _record_batches(nlp.get_pipe("elmo"))
    doc = nlp(Doc(nlp.vocab, words=[f"w{i % 997}" for i in range(100_000)]))
    assert doc._.elmo_layers.shape == (3, 100_000, 16)
    assert numpy.isfinite(doc._.elmo_layers).all() and numpy.abs(doc._.elmo_layers[:, -1]).sum() > 0
    assert max(rows * width for rows, width in shapes) <= 8192
    assert max(width for _, width in shapes) <= 128  # default window


def test_cache_skips_the_bilm_and_is_bounded(tiny_weights_dir):
    nlp = make_nlp(tiny_weights_dir, cache_size=30)
    elmo = nlp.get_pipe("elmo")
    shapes = _record_batches(elmo)
    texts = ["a b c d e", "f g h i j k", "a b c d e"]
    first = [d._.elmo_layers for d in nlp.pipe(texts)]
    n_calls = len(shapes)
    second = [d._.elmo_layers for d in nlp.pipe(texts)]
    assert len(shapes) == n_calls  # all hits
    assert elmo.cache.hits >= 3
    for a, b in zip(first, second):
        numpy.testing.assert_array_equal(a, b)
    nlp(" ".join(f"x{i}" for i in range(28)))
    assert elmo.cache.n_tokens <= 30


@pytest.mark.parametrize("precision", ["bfloat16", "int8"])
def test_precision_setting_runs_close_to_float32_and_survives_save_load(tmp_path, tiny_weights_dir, precision):
    import torch

    from spacy_elmo.bilm.precision import unsupported_reason
    from tests.bilm.test_precision import _mean_cosine

    if unsupported_reason(precision, torch.device("cpu")):
        pytest.skip(f"{precision} not supported on this CPU")
    text = "Precision is a setting of the pipe ."
    exact = make_nlp(tiny_weights_dir, dtype="float32")(text)._.elmo_layers
    nlp = make_nlp(tiny_weights_dir, dtype="float32", precision=precision)
    assert nlp.get_pipe("elmo").bilm.precision == precision  # the torch module inside the Thinc model
    got = nlp(text)._.elmo_layers
    assert not numpy.array_equal(exact, got)
    # a random biLM amplifies rounding (activations up to ~3), so compare directions token by token
    assert all(_mean_cosine(e, g) > 0.98 for e, g in zip(exact, got))
    nlp.to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")
    assert loaded.get_pipe("elmo").bilm.precision == precision
    numpy.testing.assert_array_equal(loaded(text)._.elmo_layers, got)


def test_unknown_precision_fails_at_add_pipe(tiny_weights_dir):
    with pytest.raises(ValueError, match="precision must be one of"):
        make_nlp(tiny_weights_dir, precision="fp8")


def test_span_getters_are_registered_under_our_names_only():
    import importlib.util

    from spacy.util import registry

    for name in ("strided_spans", "sent_spans", "doc_spans", "long_doc_spans"):
        assert f"spacy-elmo.{name}.v1" in registry.span_getters
    if importlib.util.find_spec("spacy_transformers") is None:
        # Its names belong to spacy-transformers: a config naming them needs that package installed.
        assert "spacy-transformers.strided_spans.v1" not in registry.span_getters


def test_plan_batches_longest_first_within_the_budget():
    from spacy_elmo.component import plan_batches

    lengths = [3, 17, 5, 9, 2, 11, 4, 8, 50]
    batches = plan_batches(lengths, 40)
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
    assert batches[0] == [8]  # longer than the budget: alone
    for batch in batches:
        assert len(batch) == 1 or len(batch) * max(lengths[i] for i in batch) <= 40
    order = [lengths[i] for batch in batches for i in batch]
    assert order == sorted(order, reverse=True)
    assert plan_batches([], 10) == []


def test_vector_hooks_survive_n_process_2(tiny_weights_dir):
    nlp = make_nlp(tiny_weights_dir, vector_hooks=True)
    texts = [f"doc {i} has cats and dogs" for i in range(6)] + ["cats and dogs"]
    for as_tuples in (False, True):
        inputs = [(t, i) for i, t in enumerate(texts)] if as_tuples else texts
        single = list(nlp.pipe(inputs, as_tuples=as_tuples))
        multi = list(nlp.pipe(inputs, as_tuples=as_tuples, n_process=2, batch_size=2))
        if as_tuples:
            assert [c for _, c in multi] == list(range(len(texts)))
            single, multi = [d for d, _ in single], [d for d, _ in multi]
        for a, b in zip(single, multi):
            assert b.has_vector and b.vector.shape == (16,)
            numpy.testing.assert_array_equal(a.vector, b.vector)
            numpy.testing.assert_array_equal(a[1].vector, b[1].vector)
            numpy.testing.assert_array_equal(a[1:3].vector, b[1:3].vector)
        assert multi[0].similarity(multi[-1]) == pytest.approx(single[0].similarity(single[-1]), abs=1e-6)
        assert multi[0].similarity(multi[-1]) != 0.0
        assert multi[0][2].similarity(multi[1][2]) == pytest.approx(single[0][2].similarity(single[1][2]), abs=1e-6)
    plain = list(nlp.pipe(texts[:2], n_process=2, disable=["elmo"]))
    assert plain[0]._.elmo_layers is None and "vector" not in plain[0].user_hooks
    copied = pickle.loads(pickle.dumps(nlp))  # the pipeline still pickles
    numpy.testing.assert_array_equal(next(copied.pipe(["cats and dogs"])).vector, multi[-1].vector)
