"""ELMoForManyLangs models built and written by elmoformanylangs 0.0.4.post2's own classes, in a venv of its own
(tests/manylangs_reference.py), load here and give its Embedder's layers for every variant: word embedding
on and off, 1 and 2 highway layers, relu and tanh, 1 to 3 LSTM layers, clipping on and off, a legacy
(torch < 1.6) pickle, on sentences with non-ASCII and unknown characters, unknown words, words longer than
max_characters_per_token, "<bos>" as a token, an empty token, empty sentences and mixed lengths."""
import numpy
import pytest

from spacy_elmo import load_bilm
from spacy_elmo.bilm.manylangs import ManyLangsBiLM
from tests.conftest import cache_dir
from tests.manylangs_reference import cached_reference, ensure_venv, run_reference

CHARS = ["<pad>", "<oov>", "<bow>", "<eow>", "<bos>", "<eos>", *"abcdefghiklmnorstuwäöüß", "北", "京", "欢", "迎", "\u3000", "!", "."]
WORDS = ["<pad>", "<oov>", "<bos>", "<eos>", "grüße", "aus", "köln", "!", "北京", "欢迎", "the", "a"]
SENTENCES = [
    ["grüße", "aus", "Köln", "!"],
    ["北京", "欢迎", "你", "。"],
    [],
    ["Donaudampfschifffahrtsgesellschaft", "kapitänsmütze", "a", "abcdefgh", "abcdefghi"],
    ["☃", "ωμέγα", "👍🏽", "unknownword", "the", "<bos>", "<eos>", "", "a\u3000b", "the", "end", "."],
    ["a"],
    [],
    ["the", "a", "the", "a", "the", "a", "the", "a", "the", "a", "the", "a", "the", "a", "the", "a", "the"],
]


def _config(word_dim, n_highway, activation="relu", n_layers=2, clip=0.5, max_chars=10):
    return {
        "encoder": {"name": "elmo", "projection_dim": 6, "cell_clip": clip, "proj_clip": clip, "dim": 10, "n_layers": n_layers},
        "token_embedder": {"name": "cnn", "activation": activation, "filters": [[1, 4], [2, 5], [3, 6]], "n_highway": n_highway,
                           "word_dim": word_dim, "char_dim": 4, "max_characters_per_token": max_chars},
        "classifier": {"name": "sampled_softmax", "n_samples": 8192},
        "dropout": 0.1,
    }


VARIANTS = {
    "words_highway1": dict(config=_config(3, 1), words=WORDS),
    "no_words_highway2_tanh": dict(config=_config(0, 2, activation="tanh", max_chars=12)),
    "words_highway2_3layers_noclip_legacy": dict(config=_config(5, 2, n_layers=3, clip=0), legacy_pickle=True,
                                                 words=[w for w in WORDS if w not in ("<bos>", "<eos>")]),
    "words_1layer": dict(config=_config(4, 1, n_layers=1, max_chars=7), words=WORDS),
}


@pytest.fixture(scope="module")
def reference():
    """{variant: (its directory, elmoformanylangs' layers per sentence)}."""
    python = ensure_venv(cache_dir() / "elmoformanylangs-venv")
    variants = [{"name": name, "seed": seed, "noise": 0.5, "encoder_noise": 0.5, "chars": CHARS, "words": None, **spec}
                for seed, (name, spec) in enumerate(VARIANTS.items())]
    directories, outputs = cached_reference(python, variants, SENTENCES, cache_dir())
    return {name: (directories[name], outputs[name]) for name in VARIANTS}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("batch_size", [1, 3, 64])
def test_every_layer_matches_elmoformanylangs(reference, variant, batch_size):
    directory, expected = reference[variant]
    bilm = load_bilm(directory)
    assert isinstance(bilm, ManyLangsBiLM)
    ours = bilm.embed_sentences(SENTENCES, batch_size=batch_size)
    n_layers = VARIANTS[variant]["config"]["encoder"]["n_layers"]
    for sentence, mine, theirs in zip(SENTENCES, ours, expected):
        assert theirs.shape == (n_layers + 1, len(sentence), 12)
        assert mine.shape == theirs.shape
        if sentence:
            assert numpy.abs(mine - theirs).max() <= 1e-5, (variant, sentence)


def test_the_reference_is_not_trivial(reference):
    """Guards the comparison itself: the layers differ between tokens and variants, and clipping bites."""
    _, layers = reference["words_highway1"]
    _, other = reference["words_1layer"]
    assert numpy.abs(layers[0][:, 0] - layers[0][:, 1]).max() > 1e-2
    assert numpy.abs(layers[0][0] - other[0][0]).max() > 1e-2
    # The first LSTM layer's output is the clipped projection (later layers add their input).
    assert max(numpy.abs(a[1]).max() for a in layers if a.size) == pytest.approx(0.5, abs=1e-6)


def test_our_saved_copy_is_bit_identical_and_elmoformanylangs_reads_it(reference, tmp_path):
    from spacy_elmo.bilm.formats import save_bilm_dir

    directory, expected = reference["words_highway1"]
    bilm = load_bilm(directory)
    save_bilm_dir(bilm, tmp_path / "copy")
    again = load_bilm(tmp_path / "copy")
    for a, b in zip(bilm.state_dict().values(), again.state_dict().values()):
        assert numpy.array_equal(a.numpy(), b.numpy())
    python = ensure_venv(cache_dir() / "elmoformanylangs-venv")
    theirs = run_reference(python, [{"name": "copy", "dir": str(tmp_path / "copy"), "existing": True}], SENTENCES, tmp_path)["copy"]
    for mine, before, after in zip(again.embed_sentences(SENTENCES), expected, theirs):
        numpy.testing.assert_array_equal(before, after)
        if mine.size:
            assert numpy.abs(mine - after).max() <= 1e-5
