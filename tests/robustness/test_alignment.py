"""Rows of ELMo features always belong to the tokens they are read for; wrong input is an error."""
import numpy
import pytest
import spacy

from spacy_elmo import load_bilm
from spacy_elmo.architectures import create_elmo_listener
from tests.conftest import random_bilm  # noqa: F401  (tiny_weights_dir fixture builds on it)


def _retokenized(weights_dir):
    nlp = spacy.blank("en")
    nlp.add_pipe("elmo", config={"weights": str(weights_dir)})
    doc = nlp("New York is big")
    with doc.retokenize() as retokenizer:
        retokenizer.merge(doc[0:2])
    assert len(doc) == 3 and doc._.elmo_layers.shape[1] == 4
    return nlp, doc


def test_features_of_a_retokenized_doc_are_an_error_not_wrong_rows(tiny_weights_dir):
    _, doc = _retokenized(tiny_weights_dir)
    for read in (lambda: doc[2]._.elmo, lambda: doc._.elmo, lambda: doc[1:3]._.elmo):
        with pytest.raises(ValueError, match="retokenized"):
            read()


def test_the_listener_refuses_a_retokenized_doc(tiny_weights_dir):
    nlp, doc = _retokenized(tiny_weights_dir)
    listener = create_elmo_listener(width=16, upstream="*", layer_norm=False, dropout=0.0, tok2vec=None)
    listener.initialize(X=[nlp("an annotated doc")])
    with pytest.raises(ValueError, match="retokenized"):
        listener.predict([doc])


def test_embed_sentences_refuses_strings_and_bad_batch_sizes(tiny_weights_dir):
    bilm = load_bilm(tiny_weights_dir / "options.json", tiny_weights_dir / "weights.hdf5")
    with pytest.raises(TypeError, match="sentence 0 is a string"):
        bilm.embed_sentences(["Hello world"])
    with pytest.raises(TypeError, match="not a string"):
        bilm.embed_sentences("Hello world")
    with pytest.raises(TypeError, match="tokens must be strings"):
        bilm.embed_sentences([["Hello", 3]])
    for bad in (0, -1, 2.5):
        with pytest.raises(ValueError, match="batch_size must be a positive integer"):
            bilm.embed_sentences([["Hello", "world"]], batch_size=bad)
    out = bilm.embed_sentences([["Hello", "world"]], batch_size=1)
    assert out[0].shape == (3, 2, 16) and numpy.isfinite(out[0]).all()
