"""ElmoListener.v1 inside spaCy pipelines: widths, concatenation with tok2vec, bad wiring."""
import numpy
import pytest
import spacy
from spacy.training import Example
from thinc.api import Config

from spacy_elmo.architectures import create_elmo_listener

TEXTCAT = """
[model]
@architectures = "spacy.TextCatReduce.v1"
exclusive_classes = true
use_reduce_first = false
use_reduce_last = false
use_reduce_max = true
use_reduce_mean = true
nO = null

[model.tok2vec]
@architectures = "spacy-elmo.ElmoListener.v1"
width = {width}
upstream = "elmo"
layer_norm = true
dropout = 0.1
tok2vec = null
"""


def _nlp(weights_dir, width):
    nlp = spacy.blank("en")
    nlp.add_pipe("elmo", config={"weights": str(weights_dir)})
    nlp.add_pipe("textcat", config=Config().from_str(TEXTCAT.format(width=width)))
    return nlp


def _examples(nlp):
    out = []
    for i, text in enumerate(["good film", "bad film", "great plot twist", "awful acting"]):
        out.append(Example.from_dict(nlp.make_doc(text), {"cats": {"POS": float(i % 2 == 0), "NEG": float(i % 2)}}))
    return out


def test_width_mismatch_fails_at_initialize_naming_both(tiny_weights_dir):
    nlp = _nlp(tiny_weights_dir, width=32)
    with pytest.raises(ValueError) as err:
        nlp.initialize(lambda: _examples(nlp))
    assert "32" in str(err.value) and "16" in str(err.value)


def test_listener_trains_and_predicts(tiny_weights_dir):
    nlp = _nlp(tiny_weights_dir, width=16)
    examples = _examples(nlp)
    optimizer = nlp.initialize(lambda: examples)
    assert nlp.get_pipe("elmo").listening_components == ["textcat"]
    mix = next(node for node in nlp.get_pipe("textcat").model.walk() if node.name == "scalar_mix")
    before = mix.get_param("s").copy()
    for _ in range(3):
        # elmo annotates, textcat learns (as spacy train does with annotating_components)
        nlp.update(examples, sgd=optimizer, annotates=["elmo"], exclude=["elmo"])
    assert not numpy.array_equal(before, mix.get_param("s"))
    doc = nlp("good plot")
    assert set(doc.cats) == {"POS", "NEG"}


def test_unannotated_docs_are_sent_to_the_linked_elmo_pipe(tiny_weights_dir):
    """Without annotating_components (or in spacy debug model) the listener asks its upstream pipe."""
    nlp = _nlp(tiny_weights_dir, width=16)
    examples = _examples(nlp)
    optimizer = nlp.initialize(lambda: examples)
    mix = next(node for node in nlp.get_pipe("textcat").model.walk() if node.name == "scalar_mix")
    before = mix.get_param("s").copy()
    for _ in range(3):  # the output layer starts at zero: the mix gets a gradient from step 2 on
        losses = nlp.update(examples, sgd=optimizer, exclude=["elmo"])  # no annotates=["elmo"]
    assert losses["textcat"] > 0 and not numpy.array_equal(before, mix.get_param("s"))
    doc = nlp.get_pipe("textcat")(nlp.make_doc("the textcat pipe alone"))
    assert doc._.elmo_layers is not None and set(doc.cats) == {"POS", "NEG"}


def test_a_listener_without_upstream_refuses_unannotated_training_docs(tiny_weights_dir):
    listener = create_elmo_listener(width=16)
    with pytest.raises(ValueError, match="no 'elmo' component is linked"):
        listener.begin_update([spacy.blank("en")("no features here")])


TEXTCAT_NULL_WIDTH = TEXTCAT.replace("width = {width}", "width = null")


def test_width_null_takes_the_width_of_the_elmo_pipe_and_trains(tiny_weights_dir, tmp_path):
    nlp = spacy.blank("en")
    nlp.add_pipe("elmo", config={"weights": str(tiny_weights_dir)})
    nlp.add_pipe("textcat", config=Config().from_str(TEXTCAT_NULL_WIDTH))
    examples = _examples(nlp)
    optimizer = nlp.initialize(lambda: examples)
    reader = next(node for node in nlp.get_pipe("textcat").model.walk() if node.name == "elmo-listener")
    assert reader.get_dim("nO") == 16
    for _ in range(2):
        nlp.update(examples, sgd=optimizer, annotates=["elmo"], exclude=["elmo"])
    before = nlp("good plot").cats
    nlp.to_disk(tmp_path / "pipeline")
    assert spacy.load(tmp_path / "pipeline")("good plot").cats == before


def test_concatenation_with_tok2vec(tiny_weights_dir):
    tok2vec = spacy.registry.resolve(
        Config().from_str(
            """
[t]
@architectures = "spacy.Tok2Vec.v2"
[t.embed]
@architectures = "spacy.MultiHashEmbed.v2"
width = 12
attrs = ["NORM"]
rows = [100]
include_static_vectors = false
[t.encode]
@architectures = "spacy.MaxoutWindowEncoder.v2"
width = 12
depth = 1
window_size = 1
maxout_pieces = 2
"""
        )
    )["t"]
    model = create_elmo_listener(width=16, tok2vec=tok2vec)
    assert model.get_dim("nO") == 28
    nlp = spacy.blank("en")
    nlp.add_pipe("elmo", config={"weights": str(tiny_weights_dir)})
    docs = list(nlp.pipe(["one two three", "four"]))
    model.initialize(X=docs)
    Y = model.predict(docs)
    assert [y.shape for y in Y] == [(3, 28), (1, 28)]


def test_a_pipeline_without_its_elmo_pipe_refuses_to_run_naming_the_fix(tiny_weights_dir, tmp_path):
    """Excluded, disabled at load or disabled for a while: the listener raises instead of running on zeros."""
    nlp = _nlp(tiny_weights_dir, width=16)
    examples = _examples(nlp)
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(3):
        nlp.update(examples, sgd=optimizer, annotates=["elmo"], exclude=["elmo"])
    expected = nlp("good plot").cats
    nlp.to_disk(tmp_path / "pipeline")

    excluded = spacy.load(tmp_path / "pipeline", exclude=["elmo"])
    with pytest.raises(ValueError, match=r"no 'elmo' component is linked.*exclude=\[\"elmo\"\].*load the pipeline with its 'elmo' pipe"):
        excluded("good plot")

    disabled = spacy.load(tmp_path / "pipeline", disable=["elmo"])
    with pytest.raises(ValueError, match=r"'elmo' pipe .* is disabled.*nlp.enable_pipe\(\"elmo\"\)"):
        disabled("good plot")
    with pytest.raises(ValueError, match="is disabled"):
        list(disabled.pipe(["good plot", "bad film"]))
    disabled.enable_pipe("elmo")
    assert disabled("good plot").cats == expected

    loaded = spacy.load(tmp_path / "pipeline")
    with loaded.select_pipes(disable=["elmo"]):
        with pytest.raises(ValueError, match="is disabled"):
            loaded("good plot")
    assert loaded("good plot").cats == expected
    # Called alone, the downstream pipe still gets its features from the linked, enabled elmo pipe.
    assert loaded.get_pipe("textcat")(loaded.make_doc("good plot")).cats == expected
