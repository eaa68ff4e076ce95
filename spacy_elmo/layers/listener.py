"""ElmoLayersReader: List[Doc] -> the stored biLM layers doc._.elmo_layers as List[Floats3d].

The elmo pipe is frozen and annotating, so the features are on the doc when a downstream model runs;
reading the extension is all the "listening" needed (no gradient goes back to the biLM).
The elmo component still finds these nodes (find_listeners, through spaCy's _link_components) to tell
them its width and layer count, so a width mismatch fails at initialize rather than mid-training.
"""
from typing import Callable, List, Optional, Tuple

import numpy
from spacy.tokens import Doc
from thinc.api import Model
from thinc.types import Floats3d

NAME = "elmo-listener"


def ElmoLayersReader(width: int, upstream: str = "*") -> Model[List[Doc], List[Floats3d]]:
    return Model(
        NAME,
        forward,
        init=init,
        dims={"nO": width},
        attrs={"upstream_name": upstream, "upstream_width": None, "upstream_n_layers": None},
    )


def _check_width(model: Model, found: int, where: str) -> None:
    width = model.get_dim("nO")
    if found != width:
        raise ValueError(
            f"ElmoListener width mismatch: the listener is configured with width = {width}, but the biLM "
            f"{where} produces width {found} (2 x projection_dim). Set the listener's width to {found}."
        )


def init(model: Model, X: Optional[List[Doc]] = None, Y=None) -> None:
    upstream_width = model.attrs.get("upstream_width")
    if upstream_width is not None:
        _check_width(model, int(upstream_width), f"of the '{model.attrs['upstream_name']}' component")
    for doc in X or []:
        layers = doc._.elmo_layers
        if layers is not None:
            _check_width(model, int(layers.shape[-1]), "that annotated the docs")


def forward(model: Model, docs: List[Doc], is_train: bool) -> Tuple[List[Floats3d], Callable]:
    ops = model.ops
    width = model.get_dim("nO")
    outputs = []
    for doc in docs:
        layers = doc._.elmo_layers
        if layers is None:
            if is_train:
                raise ValueError(
                    "doc._.elmo_layers is not set: put the 'elmo' component before this one and list it in "
                    "[training] annotating_components so it annotates the training docs."
                )
            # Prediction before annotation happens only when spaCy initializes downstream models
            # (their shape inference runs on unannotated docs): zeros of the right shape.
            n_layers = model.attrs.get("upstream_n_layers") or 3
            outputs.append(ops.alloc3f(int(n_layers), len(doc), width))
            continue
        if layers.shape[-1] != width:
            _check_width(model, int(layers.shape[-1]), "that annotated the docs")
        if layers.shape[1] != len(doc):  # retokenized after the elmo pipe ran: row i is no longer token i
            raise ValueError(
                f"doc._.elmo_layers has {layers.shape[1]} token rows but the doc has {len(doc)} tokens: the doc was "
                "retokenized after the 'elmo' pipe ran. Put the 'elmo' pipe after any component that merges or "
                "splits tokens."
            )
        outputs.append(ops.asarray3f(numpy.asarray(layers, dtype="float32")))

    def backprop(dY: List[Floats3d]) -> List[Doc]:
        return []  # the biLM is frozen

    return outputs, backprop
