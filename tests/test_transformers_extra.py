"""The `transformers` extra: spacy-transformers' span getters and its TransformerListener on the `elmo` pipe.

Skipped where spacy-transformers is not installed (`pip install -e ".[transformers]"`; `make setup` does).
"""
import io
import random
from pathlib import Path
from typing import Dict, List

import numpy
import pytest
import spacy
from spacy.tokens import DocBin, Span
from spacy.util import registry
from thinc.api import Config

spacy_transformers = pytest.importorskip("spacy_transformers")

from spacy_transformers.data_classes import TransformerData  # noqa: E402

from spacy_elmo import trf_bridge  # noqa: E402
from spacy_elmo.span_getters import get_strided_spans  # noqa: E402

NAMES = ["Alice", "Bob", "Carol", "Paris", "London", "Oslo"]
LOSSES: List[Dict[str, float]] = []  # the recording logger's losses, one entry per evaluation


@registry.loggers("spacy-elmo-test.loss_recorder.v1")
def loss_recorder():
    def setup(nlp, stdout, stderr):
        def log_step(info):
            if info is not None:
                LOSSES.append(dict(info["losses"]))

        return log_step, lambda: None

    return setup


CONFIG = """
[paths]
train = null
dev = null
elmo_weights = null

[system]
seed = 0
gpu_allocator = null

[nlp]
lang = "en"
pipeline = ["elmo", "ner"]
batch_size = 32

[components]

[components.elmo]
factory = "elmo"
dtype = "float32"

[components.elmo.get_spans]
@span_getters = "spacy-transformers.strided_spans.v1"
window = 16
stride = 12

[components.ner]
factory = "ner"

[components.ner.model]
@architectures = "spacy.TransitionBasedParser.v2"
state_type = "ner"
extra_state_tokens = false
hidden_width = 32
maxout_pieces = 2
use_upper = true
nO = null

[components.ner.model.tok2vec]
@architectures = "spacy-transformers.TransformerListener.v1"
grad_factor = 1.0
upstream = "elmo"

[components.ner.model.tok2vec.pooling]
@layers = "reduce_mean.v1"

[corpora]

[corpora.train]
@readers = "spacy.Corpus.v1"
path = ${paths.train}

[corpora.dev]
@readers = "spacy.Corpus.v1"
path = ${paths.dev}

[training]
seed = ${system.seed}
gpu_allocator = ${system.gpu_allocator}
dropout = 0.0
max_epochs = 0
max_steps = 48
eval_frequency = 8
patience = 0
# Not annotating: in training the listener gets its features only through elmo.update (receive).
frozen_components = []
annotating_components = []

[training.batcher]
@batchers = "spacy.batch_by_sequence.v1"
size = 8

[training.optimizer]
@optimizers = "Adam.v1"
learn_rate = 0.02

[training.logger]
@loggers = "spacy-elmo-test.loss_recorder.v1"

[training.score_weights]
ents_f = 1.0

[initialize]

[initialize.components]

[initialize.components.elmo]

[initialize.components.elmo.weights_loader]
@model_loaders = "spacy-elmo.WeightsLoader.v1"
path = ${paths.elmo_weights}
"""


def _corpus(path: Path) -> Path:
    nlp = spacy.blank("en")
    rng = random.Random(0)
    docs = DocBin()
    for _ in range(24):
        a, b = rng.choice(NAMES), rng.choice(NAMES)
        doc = nlp(f"Yesterday {a} went to {b} and it was fine .")
        doc.ents = [Span(doc, k, k + 1, "PERSON" if doc[k].text in NAMES[:3] else "LOC") for k in (1, 4)]
        docs.add(doc)
    docs.to_disk(path)
    return path


def _config(weights: Path, data: Path, **overrides) -> Config:
    config = Config().from_str(CONFIG, interpolate=False)
    config["paths"].update({"train": str(data), "dev": str(data), "elmo_weights": str(weights)})
    for section, values in overrides.items():
        config["components"]["ner"]["model"][section].update(values)
    return config


def test_span_getters_are_spacy_transformers_own():
    for name, func in (
        ("spacy-transformers.strided_spans.v1", spacy_transformers.span_getters.configure_strided_spans),
        ("spacy-transformers.sent_spans.v1", spacy_transformers.span_getters.configure_get_sent_spans),
        ("spacy-transformers.doc_spans.v1", spacy_transformers.span_getters.configure_get_doc_spans),
    ):
        assert registry.span_getters.get(name) is func
    # Our own names stay registered, and ours cut the same windows as theirs.
    assert "spacy-elmo.strided_spans.v1" in registry.span_getters.get_all()
    nlp = spacy.blank("en")
    docs = [nlp(" ".join(["w"] * n)) for n in (0, 1, 5, 11, 12, 13, 24, 25, 40)]
    for window, stride in ((4, 4), (6, 4), (5, 1)):
        ours = get_strided_spans(docs, window, stride)
        theirs = spacy_transformers.span_getters.get_strided_spans(docs, window, stride)
        assert [[(s.start, s.end) for s in d] for d in ours] == [[(s.start, s.end) for s in d] for d in theirs]


def test_listener_links_with_wildcard_and_name(tiny_weights_dir, tmp_path):
    data = _corpus(tmp_path / "train.spacy")
    for upstream in ("*", "elmo"):
        nlp = spacy.util.load_model_from_config(_config(tiny_weights_dir, data, tok2vec={"upstream": upstream}), auto_fill=True)
        elmo = nlp.get_pipe("elmo")
        assert elmo.listening_components == ["ner"]
        assert [node.name for node in elmo.listeners] == ["transformer-listener"]
        (listener,) = trf_bridge.listeners(elmo)
        assert listener.upstream_name == upstream
    nlp = spacy.util.load_model_from_config(_config(tiny_weights_dir, data, tok2vec={"upstream": "transformer"}), auto_fill=True)
    assert nlp.get_pipe("elmo").listening_components == []


def test_transformer_listener_ner_trains_on_elmo(tiny_weights_dir, tmp_path):
    from spacy.training.initialize import init_nlp
    from spacy.training.loop import train

    data = _corpus(tmp_path / "train.spacy")
    nlp = init_nlp(_config(tiny_weights_dir, data))
    assert nlp.get_pipe("elmo").get_spans.func is spacy_transformers.span_getters.get_strided_spans
    assert nlp.get_pipe("elmo").listening_components == ["ner"]
    (listener,) = trf_bridge.listeners(nlp.get_pipe("elmo"))
    assert listener.get_dim("nO") == 16  # 2 x projection_dim, told by the elmo pipe
    LOSSES.clear()
    (tmp_path / "out").mkdir()
    nlp, _ = train(nlp, tmp_path / "out", stdout=io.StringIO(), stderr=io.StringIO())

    # Evaluated at step 0 (its one step's loss), then every 8 steps (the 8 steps' losses): the listener
    # learned from the features elmo.update passed it (the docs in training are never annotated).
    ner_losses = [losses["ner"] for losses in LOSSES]
    assert len(ner_losses) == 7 and all(numpy.isfinite(ner_losses)), ner_losses
    assert ner_losses[-1] < 0.3 * ner_losses[1], ner_losses
    assert nlp.meta["performance"]["ents_f"] > 0.8  # on its training docs, predicted through doc._.trf_data

    texts = ["Yesterday Alice went to Oslo and it was fine .", "Bob", ""]
    docs = list(nlp.pipe(texts))
    assert docs[0].ents
    for doc in docs[:2]:
        trf = doc._.trf_data
        assert isinstance(trf, TransformerData)
        assert trf.model_output.last_hidden_state.shape == (1, len(doc), 16)
        numpy.testing.assert_array_equal(trf.model_output.last_hidden_state[0], doc._.elmo)
        assert list(trf.align.data) == list(range(len(doc))) and list(trf.align.lengths) == [1] * len(doc)
        assert trf.wordpieces.strings == [[t.text for t in doc]]
    assert "last_hidden_state" not in docs[2]._.trf_data.model_output  # an empty doc, as spacy-transformers gives

    # Saved, loaded in this process: the same predictions and features.
    loaded = spacy.load(tmp_path / "out" / "model-last")
    assert loaded.get_pipe("elmo").listening_components == ["ner"]
    again = list(loaded.pipe(texts))
    for a, b in zip(docs, again):
        assert [(e.text, e.label_) for e in a.ents] == [(e.text, e.label_) for e in b.ents]
        numpy.testing.assert_array_equal(a._.elmo_layers, b._.elmo_layers)
