"""ELMo features for spacy-transformers' TransformerListener (the optional `transformers` extra).

    pip install "spacy-elmo[transformers]"

A downstream component whose tok2vec is `spacy-transformers.TransformerListener.v1` (upstream "elmo", the
`elmo` pipe's name, or "*") runs on the `elmo` pipe as it would on a `transformer` pipe:
- at prediction the listener reads doc._.trf_data, which the `elmo` pipe sets (set_trf_data);
- in training the `elmo` pipe's update passes each batch's features to its TransformerListener nodes
  (feed_listeners), as spacy-transformers' Transformer.update does, with a backprop that returns nothing:
  the biLM is frozen. spaCy links the nodes to the pipe through its find_listeners (is_listener).

Which ELMo vector: the pipe's fixed mix, the same vector as doc._.elmo / token._.elmo:
mix_gamma * sum_l mix_weights[l] * layer_l (uniform weights when mix_weights is null), width 2 x
projection_dim (1024 for the original ELMo). Why: a TransformerListener has no scalar mix of its own and
its pipelines expect one hidden state of the encoder's width per wordpiece; the mix is the vector the pipe
already gives as a token's ELMo vector, and it keeps the biLM's width, where the layers concatenated would
triple both the width of the downstream input layer and the copy held on each doc. mix_weights picks
another fixed mix (e.g. [0, 0, 1]: the top LSTM layer alone). For a mix learned per task, use
spacy-elmo.ElmoListener.v1 (layers/listener.py) instead of a TransformerListener.

The features are laid out as a transformer's would be for a doc read as one span: last_hidden_state
(1, len(doc), width), one "wordpiece" per token (the token's text), align the identity (token i -> row i),
so the listener's pooling (reduce_mean and the like) returns each token's vector unchanged.

Nothing here imports spacy-transformers: it acts where spacy_transformers is imported, and spaCy imports
it in every process where it is installed (each Language() loads all `spacy_factories` entry points, its
`transformer` factory among them). So with the extra installed every doc the `elmo` pipe annotates also
holds doc._.trf_data: len(doc) x width float32 more (2/3 of doc._.elmo_layers' size for 3 layers in
float16), the price of the listener reading it; without the extra nothing changes.
"""
import sys
from typing import TYPE_CHECKING, Any, Iterable, List, Optional, Sequence, cast

import numpy
from spacy.tokens import Doc
from thinc.api import Model
from thinc.types import Ints1d

from .extensions import mix_layers

if TYPE_CHECKING:  # pragma: no cover
    from spacy_transformers.data_classes import TransformerData

LISTENER_NAME = "transformer-listener"  # spacy_transformers.layers.TransformerListener.name
MODULE = "spacy_transformers"


def active() -> bool:
    """Whether spacy-transformers is in use in this process (imported), so doc._.trf_data can be read."""
    return MODULE in sys.modules


def is_listener(node: Model, upstream: str) -> bool:
    """A TransformerListener node listening to the pipe named `upstream` (or to any: "*"). By its name, as
    the nodes of ElmoListener are found, so that walking a model never imports spacy-transformers.
    A listener with upstream "*" in a pipeline that also has a `transformer` pipe is claimed by both
    (each feeds it in its own update): give such listeners the name of the pipe they are meant for."""
    return node.name == LISTENER_NAME and hasattr(node, "receive") and getattr(node, "upstream_name", None) in ("*", upstream)


def to_trf_data(doc: Doc, vectors: numpy.ndarray) -> "TransformerData":
    """One doc's (len(doc), width) vectors as a TransformerData: one span, one wordpiece per token."""
    from spacy_transformers.data_classes import TransformerData, WordpieceBatch
    from thinc.types import Ragged
    from transformers.modeling_outputs import BaseModelOutput

    n = len(doc)
    if n == 0:
        return TransformerData.empty()  # as spacy-transformers gives an empty doc
    wordpieces = WordpieceBatch(
        strings=[[token.text for token in doc]],
        input_ids=numpy.zeros((1, n), dtype="i"),
        attention_mask=numpy.ones((1, n), dtype="bool"),
        lengths=[n],
        token_type_ids=None,
    )
    hidden = numpy.ascontiguousarray(vectors, dtype="float32").reshape(1, n, -1)
    align = Ragged(cast(Ints1d, numpy.arange(n, dtype="i")), cast(Ints1d, numpy.ones(n, dtype="i")))
    return TransformerData(wordpieces=wordpieces, model_output=BaseModelOutput(last_hidden_state=hidden), align=align)


def install_extension() -> None:
    """doc._.trf_data, as a `transformer` pipe registers it when built: a pipeline whose TransformerListener
    listens to `elmo` may have no `transformer` pipe, and the listener reads the extension even in
    initialize (on docs no pipe annotated: it then gives zeros)."""
    if active():
        from spacy_transformers.pipeline_component import install_extensions

        install_extensions()


def set_trf_data(docs: Iterable[Doc]) -> None:
    """doc._.trf_data from the doc's ELMo (doc._.elmo: its layers under the pipe's fixed mix), where
    spacy-transformers is in use; else nothing."""
    if not active():
        return
    install_extension()
    for doc in docs:
        doc._.trf_data = to_trf_data(doc, doc._.elmo)


def listeners(pipe) -> List[Model]:
    return [node for node in pipe.listeners if node.name == LISTENER_NAME and hasattr(node, "receive")]


def feed_listeners(pipe, docs: Sequence[Doc], layers: Optional[List[numpy.ndarray]] = None) -> None:
    """In training, what spacy-transformers' Transformer.update does for its listeners: give each
    TransformerListener linked to `pipe` this batch's features (the pipe's fixed mix of `layers`, its
    predict(docs) when not given), with a backprop that returns no gradient (the biLM is frozen)."""
    nodes: List[Any] = listeners(pipe)  # TransformerListener: spacy-transformers is optional and untyped
    if not nodes:
        return
    if layers is None:
        layers = pipe.predict(docs)
    weights, gamma = pipe.cfg["mix_weights"], pipe.cfg["mix_gamma"]
    outputs = [to_trf_data(doc, mix_layers(doc_layers, weights, gamma)) for doc, doc_layers in zip(docs, layers)]
    batch_id = type(nodes[0]).get_batch_id(docs)
    for node in nodes:
        node.receive(batch_id, outputs, _no_gradient)


def _no_gradient(d_trf_datas) -> List[Doc]:
    return []
