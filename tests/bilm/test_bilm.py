import json

import h5py
import numpy
import pytest
import torch

from spacy_elmo import load_bilm
from tests.conftest import random_bilm, tiny_options

SENTENCES = [
    "The quick brown fox jumps over the lazy dog .".split(),
    "Hello".split(),
    "Ein Satz mit Umlauten : Größe , Übung".split(),
    "東京 は 日本 の 首都 です 👍".split(),
    ["x" * 70, "tokens", "over", "fifty", "bytes"],
    "a b c d e f g h i j k l m n o p q r s t u v w x y z".split(),
]


def test_bilm_tf_parity_stateful(bilm_tf_fixtures):
    """The 30 reference sentences as 10 consecutive batches of 3, state carried: bilm-tf's own outputs."""
    bilm = load_bilm(bilm_tf_fixtures / "options.json", bilm_tf_fixtures / "lm_weights.hdf5", stateful=True)
    sentences = json.loads((bilm_tf_fixtures / "sentences.json").read_text())
    expected = []
    for k in range(3):
        with h5py.File(bilm_tf_fixtures / f"lm_embeddings_{k}.hdf5", "r") as fin:
            expected.append([numpy.concatenate([fin[str(i)][0], fin[str(i)][1]], -1) for i in range(10)])
    worst = 0.0
    for i in range(10):
        batch = [sentences[k][i].split() for k in range(3)]
        outputs = bilm.embed_sentences(batch, batch_size=3)
        for k in range(3):
            assert outputs[k].shape == (3, len(batch[k]), 32)
            worst = max(worst, float(numpy.abs(outputs[k][2] - expected[k][i]).max()))
    assert worst < 1e-5, worst


def test_stateful_depends_on_history_and_resets(bilm_tf_fixtures):
    bilm = load_bilm(bilm_tf_fixtures / "options.json", bilm_tf_fixtures / "lm_weights.hdf5", stateful=True)
    first = bilm.embed_sentences([SENTENCES[0]])[0]
    second = bilm.embed_sentences([SENTENCES[0]])[0]
    assert not numpy.allclose(first[1:], second[1:])
    bilm.reset_states()
    assert numpy.array_equal(bilm.embed_sentences([SENTENCES[0]])[0], first)


def test_stateless_output_independent_of_batching_and_neighbours(bilm_tf_fixtures):
    bilm = load_bilm(bilm_tf_fixtures / "options.json", bilm_tf_fixtures / "lm_weights.hdf5")
    alone = [bilm.embed_sentences([s])[0] for s in SENTENCES]
    for batch_size in (1, 2, 4, 64):
        together = bilm.embed_sentences(SENTENCES, batch_size=batch_size)
        for a, b in zip(alone, together):
            numpy.testing.assert_allclose(a, b, atol=1e-6, rtol=0)
    reversed_out = bilm.embed_sentences(SENTENCES[::-1])[::-1]
    for a, b in zip(alone, reversed_out):
        numpy.testing.assert_allclose(a, b, atol=1e-6, rtol=0)
    again = bilm.embed_sentences(SENTENCES)
    for a, b in zip(bilm.embed_sentences(SENTENCES), again):
        assert numpy.array_equal(a, b)  # deterministic


def test_shapes_empty_and_layer_zero():
    bilm = random_bilm()
    outputs = bilm.embed_sentences([[], ["one"], []] + SENTENCES)
    assert outputs[0].shape == (3, 0, 16) and outputs[2].shape == (3, 0, 16)
    assert all(o.dtype == numpy.float32 for o in outputs)
    one = outputs[1]
    assert one.shape == (3, 1, 16)
    # layer 0 is the token vector duplicated
    numpy.testing.assert_array_equal(one[0, :, :8], one[0, :, 8:])
    assert numpy.isfinite(numpy.concatenate([o.reshape(-1) for o in outputs])).all()
    assert bilm.embed_sentences([]) == []


def test_embed_sentences_restores_training_mode_and_has_no_grad():
    bilm = random_bilm()
    bilm.train()
    bilm.embed_sentences(SENTENCES[:2])
    assert bilm.training


@pytest.mark.parametrize(
    "overrides",
    [
        dict(activation="tanh"),
        dict(n_highway=2),
        dict(n_highway=0),
        dict(n_characters=261),
        dict(n_layers=1),
        dict(n_layers=3),
        dict(use_skip_connections=False),
        dict(cell_clip=0.0, proj_clip=0.0),
    ],
)
def test_option_variants_run_and_round_trip(tmp_path, overrides):
    from spacy_elmo import save_bilm

    bilm = random_bilm(**overrides)
    save_bilm(bilm, tmp_path)
    loaded = load_bilm(tmp_path / "options.json", tmp_path / "weights.hdf5")
    for a, b in zip(bilm.embed_sentences(SENTENCES), loaded.embed_sentences(SENTENCES)):
        assert a.shape == (bilm.options.n_layers + 1, a.shape[1], 16)
        numpy.testing.assert_array_equal(a, b)


def test_char_cache_gives_identical_outputs():
    plain = random_bilm()
    cached = random_bilm()
    from spacy_elmo.bilm.char_cnn import CharCNNCache

    cached.char_cache = CharCNNCache(max_size=5)
    for _ in range(2):
        for a, b in zip(plain.embed_sentences(SENTENCES), cached.embed_sentences(SENTENCES)):
            numpy.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5)  # GEMM row blocking: last bits only
    assert len(cached.char_cache) == 5


def test_gradients_flow_through_every_parameter():
    bilm = random_bilm()
    bilm.train()
    from spacy_elmo.bilm.chars import batch_to_char_ids

    out = bilm(torch.as_tensor(batch_to_char_ids(SENTENCES[:3]))).activations
    out.sum().backward()
    for name, param in bilm.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name


def test_output_dim_and_flops():
    options = tiny_options()
    assert options.output_dim == 16 and options.n_outputs == 3
    from spacy_elmo import BiLMOptions

    full = BiLMOptions()
    assert 195e6 < full.flops_per_token() < 215e6  # DESIGN.md: about 204 MFLOP per token


def test_inference_under_bf16_autocast_is_close_to_fp32():
    bilm = random_bilm()
    with torch.no_grad():
        for param in bilm.parameters():
            param.mul_(0.2)  # keep activations in a range where bf16 rounding stays small
    expected = bilm.embed_sentences(SENTENCES)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = bilm.embed_sentences(SENTENCES)
    for a, b in zip(expected, got):
        assert b.dtype == numpy.float32 and a.shape == b.shape
        numpy.testing.assert_allclose(a, b, atol=0.1, rtol=0)
