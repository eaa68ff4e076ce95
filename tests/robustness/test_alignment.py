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


def _merged_and_split(weights_dir):
    """'New York is big .' after the pipe: 'New York' merged, 'big' split into 'b' 'ig': 5 tokens, as before."""
    nlp = spacy.blank("en")
    nlp.add_pipe("elmo", config={"weights": str(weights_dir)})
    doc = nlp("New York is big .")
    with doc.retokenize() as retokenizer:
        retokenizer.merge(doc[0:2])
    with doc.retokenize() as retokenizer:
        retokenizer.split(doc[2], ["b", "ig"], heads=[doc[2], doc[2]])
    assert [t.text for t in doc] == ["New York", "is", "b", "ig", "."] and doc._.elmo_layers.shape[1] == 5
    return nlp, doc


def test_a_retokenized_doc_with_the_same_token_count_is_an_error(tiny_weights_dir):
    _, doc = _merged_and_split(tiny_weights_dir)
    for read in (lambda: doc._.elmo, lambda: doc[0]._.elmo, lambda: doc[1]._.elmo, lambda: doc[0:3]._.elmo,
                 lambda: doc[2:4]._.elmo, lambda: doc[:]._.elmo):
        with pytest.raises(ValueError, match="retokenized .* Put the 'elmo' pipe after any component that merges or splits") as err:
            read()
        assert "was computed for" in str(err.value)
    with pytest.raises(ValueError, match=r"row 0 was computed for 'New' \(characters 0-3\) but token 0 is now 'New York'"):
        doc._.elmo
    # The last token is still the '.' the features were computed for: its own row is right.
    assert doc[4]._.elmo.shape == (16,)


def test_the_listener_refuses_a_retokenized_doc_with_the_same_token_count(tiny_weights_dir):
    nlp, doc = _merged_and_split(tiny_weights_dir)
    listener = create_elmo_listener(width=16, upstream="*", layer_norm=False, dropout=0.0, tok2vec=None)
    listener.initialize(X=[nlp("an annotated doc")])
    with pytest.raises(ValueError, match="retokenized"):
        listener.predict([doc])


def test_the_fingerprint_travels_with_the_doc(tiny_weights_dir):
    import pickle

    from spacy.tokens import DocBin

    nlp, doc = _merged_and_split(tiny_weights_dir)
    fine = nlp("New York is big .")
    for copy in (pickle.loads(pickle.dumps(doc)), list(DocBin(docs=[doc], store_user_data=True).get_docs(nlp.vocab))[0]):
        with pytest.raises(ValueError, match="retokenized"):
            copy._.elmo
    back = list(DocBin(docs=[fine], store_user_data=True).get_docs(nlp.vocab))[0]
    numpy.testing.assert_array_equal(back._.elmo, fine._.elmo)
    # Running the pipe again on the changed doc is the fix.
    numpy.testing.assert_array_equal(nlp.get_pipe("elmo")(doc)._.elmo.shape, (5, 16))
