"""Registered architectures: spacy-elmo.ElmoListener.v1 (and spacy-elmo.ScalarMix.v1)."""
from typing import List, Optional

from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Dropout, Model, chain, concatenate
from thinc.types import Floats2d, Floats3d

from . import extensions  # noqa: F401  (registers the doc._.elmo_layers extension the listener reads)
from .layers import ElmoLayersReader, ScalarMix


@registry.architectures("spacy-elmo.ScalarMix.v1")
def create_scalar_mix(n_layers: Optional[int] = None, layer_norm: bool = False) -> Model[List[Floats3d], List[Floats2d]]:
    return ScalarMix(n_layers=n_layers, layer_norm=layer_norm)


@registry.architectures("spacy-elmo.ElmoListener.v1")
def create_elmo_listener(
    width: Optional[int] = None,
    upstream: str = "*",
    layer_norm: bool = False,
    dropout: float = 0.0,
    tok2vec: Optional[Model[List[Doc], List[Floats2d]]] = None,
) -> Model[List[Doc], List[Floats2d]]:
    """Token vectors for a downstream component from the stored ELMo layers: a trainable task-specific
    ScalarMix (softmax weights, gamma; optional per-layer norm), dropout, and optionally concatenated with
    a spaCy tok2vec (e.g. spacy.Tok2Vec.v2). width = None (null in a config, the default) takes the biLM's
    2 * projection_dim from the upstream 'elmo' component when its weights arrive; a width that is set is
    checked against it at initialize."""
    elmo: Model[List[Doc], List[Floats2d]] = chain(ElmoLayersReader(width, upstream), ScalarMix(layer_norm=layer_norm))
    if dropout:
        elmo = chain(elmo, Dropout(dropout))
    if tok2vec is None:
        model = elmo
        if width is not None:
            model.set_dim("nO", width)
    else:
        model = concatenate(elmo, tok2vec)
        if width is not None and tok2vec.has_dim("nO") and tok2vec.get_dim("nO"):
            model.set_dim("nO", width + tok2vec.get_dim("nO"))
    return model
