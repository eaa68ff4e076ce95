"""ElmoLayersReader: List[Doc] -> the stored biLM layers doc._.elmo_layers as List[Floats3d].

The elmo pipe is frozen and annotating, so the features are on the doc when a downstream model runs;
reading the extension is all the "listening" needed (no gradient goes back to the biLM).
The elmo component still finds these nodes by NAME (find_listeners, through spaCy's _link_components) to
tell them its width and layer count: a listener with width = None (null in a config) takes the biLM's
2 x projection_dim from it, and one with a width set that disagrees fails at initialize, naming both.
"""
import weakref
from typing import Callable, List, Optional, Protocol, Tuple

import numpy
from spacy.tokens import Doc
from thinc.api import Model
from thinc.types import Floats3d

NAME = "elmo-listener"


class Annotator(Protocol):
    def annotate(self, docs: List[Doc]) -> None: ...


# The upstream pipe of each linked listener node, by node id. Not in node.attrs: attrs are serialised with
# the model, a pipe is not; weak, so a discarded pipeline is not kept alive by its listeners.
_UPSTREAM: "weakref.WeakValueDictionary[int, Annotator]" = weakref.WeakValueDictionary()


def link_upstream(model: Model, pipe: Annotator) -> None:
    """Called by the elmo pipe when it finds this listener: docs it has not annotated yet (spacy debug model,
    nlp.update without annotating_components, a downstream pipe called alone) are sent to it."""
    _UPSTREAM[model.id] = pipe


def unlink_upstream(model: Model) -> None:
    _UPSTREAM.pop(model.id, None)


def ElmoLayersReader(width: Optional[int] = None, upstream: str = "*") -> Model[List[Doc], List[Floats3d]]:
    return Model(
        NAME,
        forward,
        init=init,
        dims={"nO": width},
        attrs={"upstream_name": upstream, "upstream_width": None, "upstream_n_layers": None},
    )


def _check_width(model: Model, found: int, where: str) -> None:
    """Take `found` as the width when none is set (width = null), else insist on equality."""
    width = model.maybe_get_dim("nO")
    if width is None:
        model.set_dim("nO", found)
    elif found != width:
        raise ValueError(
            f"ElmoListener width mismatch: the listener is configured with width = {width}, but the biLM "
            f"{where} produces width {found} (2 x projection_dim). Set the listener's width to {found}, or to "
            "null to take it from the 'elmo' component."
        )


def init(model: Model, X: Optional[List[Doc]] = None, Y=None) -> None:
    upstream_width = model.attrs.get("upstream_width")
    if upstream_width is not None:
        _check_width(model, int(upstream_width), f"of the '{model.attrs['upstream_name']}' component")
    for doc in X or []:
        layers = doc._.elmo_layers
        if layers is not None:
            _check_width(model, int(layers.shape[-1]), "that annotated the docs")
    if model.maybe_get_dim("nO") is None:
        raise ValueError(
            "ElmoListener: width is null and nothing told it the biLM's width: put an 'elmo' component before "
            "this one in the pipeline (its upstream setting names it, or \"*\"), initialize with docs the 'elmo' "
            "pipe annotated, or set width to 2 x projection_dim."
        )


def forward(model: Model, docs: List[Doc], is_train: bool) -> Tuple[List[Floats3d], Callable]:
    ops = model.ops
    outputs = []
    missing = [doc for doc in docs if doc._.elmo_layers is None]
    upstream = _UPSTREAM.get(model.id)
    if missing and upstream is not None:
        upstream.annotate(missing)  # the frozen biLM's features, as if the pipe had run (cached likewise)
    for doc in docs:
        layers = doc._.elmo_layers
        if layers is None:
            if is_train:
                raise ValueError(
                    "doc._.elmo_layers is not set and no 'elmo' component is linked to this listener: put the "
                    "'elmo' component before this one in the pipeline (its upstream setting names it, or \"*\")."
                )
            # Without an upstream pipe (a listener initialized on its own, before any doc was annotated),
            # shape inference runs on unannotated docs: zeros of the right shape.
            n_layers = model.attrs.get("upstream_n_layers") or 3
            outputs.append(ops.alloc3f(int(n_layers), len(doc), model.get_dim("nO")))
            continue
        if layers.shape[-1] != model.maybe_get_dim("nO"):
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
