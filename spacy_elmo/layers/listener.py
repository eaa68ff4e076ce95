"""ElmoLayersReader: List[Doc] -> the stored biLM layers doc._.elmo_layers as List[Floats3d].

The elmo pipe is frozen and annotating, so the features are on the doc when a downstream model runs;
reading the extension is all the "listening" needed (no gradient goes back to the biLM).
The elmo component still finds these nodes by NAME (find_listeners, through spaCy's _link_components) to
tell them its width and layer count: a listener with width = None (null in a config) takes the biLM's
2 x projection_dim from it, and one with a width set that disagrees fails at initialize, naming both.

A listener never runs on made-up features: docs without layers go to the linked pipe, and where there is
none (excluded, never added), where it is disabled, or where it is frozen in training so that its weights
never arrive, it raises an error that names the fix.
"""
import weakref
from typing import Any, Callable, Dict, List, Optional, Protocol, Tuple, cast

import numpy
from spacy.language import Language
from spacy.tokens import Doc
from thinc.api import Model
from thinc.types import Floats3d

from ..extensions import check_alignment

from .bilm_model import get_bilm

NAME = "elmo-listener"

NOT_LINKED = (
    "doc._.elmo_layers is not set and no 'elmo' component is linked to this listener, so it has no ELMo "
    "features to read. The pipeline has no enabled 'elmo' pipe before this component (was it loaded with "
    "exclude=[\"elmo\"]?): load the pipeline with its 'elmo' pipe, or add one before this component (the "
    "listener's upstream setting names it, or \"*\")."
)
DISABLED = (
    "The '{name}' pipe that gives this listener its ELMo features is disabled, so the docs have none. "
    "Enable it: nlp.enable_pipe(\"{name}\"), or load the pipeline without disable=[\"{name}\"]."
)
FROZEN = (
    "'{name}' is in [training] frozen_components, and spaCy never initializes a frozen component, so its "
    "weights loader ([initialize.components.{name}.weights_loader]) never runs and the listeners get no "
    "features. Remove \"{name}\" from frozen_components and keep it in annotating_components: the elmo pipe "
    "never updates, so it stays frozen."
)


class Annotator(Protocol):
    cfg: Dict[str, Any]
    model: Model

    def annotate(self, docs: List[Doc]) -> None: ...


# The upstream pipe of each linked listener node, by node id. Not in node.attrs: attrs are serialised with
# the model, a pipe is not; weak, so a discarded pipeline is not kept alive by its listeners.
_UPSTREAM: "weakref.WeakValueDictionary[int, Annotator]" = weakref.WeakValueDictionary()
# The pipeline that made each elmo pipe, to see whether the pipe is disabled there or frozen in its training
# config. Beside the pipe rather than on it: the pipe stays picklable, and neither keeps the other alive.
_PIPELINE: "weakref.WeakKeyDictionary[Annotator, weakref.ReferenceType[Language]]" = weakref.WeakKeyDictionary()


def bind_pipeline(pipe: Annotator, nlp: Language) -> None:
    """Called by the elmo factory with the pipeline it builds the pipe for."""
    _PIPELINE[pipe] = weakref.ref(nlp)


def upstream_problem(pipe: Annotator, *, initializing: bool) -> Optional[str]:
    """Why `pipe` cannot give a listener features now, with the fix (None when it can)."""
    ref = _PIPELINE.get(pipe)
    nlp = ref() if ref is not None else None
    name = None if nlp is None else next((n for n, p in nlp.components if p is pipe), None)
    if nlp is None or name is None:  # a pipe moved to another pipeline, or its pipeline is gone
        return None
    if initializing:
        # spaCy disables frozen components while it initializes the others: that is no reason to refuse,
        # unless the weights could only have come from the initialization that frozen skips.
        frozen = nlp.config.get("training", {}).get("frozen_components", [])
        no_weights = get_bilm(pipe.model) is None and pipe.cfg.get("weights") is None
        return FROZEN.format(name=name) if name in frozen and no_weights else None
    return DISABLED.format(name=name) if name in nlp.disabled else None


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


def init(model: Model, X: Optional[List[Doc]] = None, Y: Any = None) -> None:
    upstream = _UPSTREAM.get(model.id)
    if upstream is not None:
        problem = upstream_problem(upstream, initializing=True)
        if problem is not None:
            raise ValueError(problem)
        missing = [doc for doc in X or [] if doc._.elmo_layers is None]
        if missing:
            # Here, not in forward: the pipe may be disabled while spaCy initializes (frozen), and the
            # shape inference that follows reads these same docs.
            upstream.annotate(missing)
    upstream_width = model.attrs.get("upstream_width")
    if upstream_width is not None:
        _check_width(model, int(upstream_width), f"of the '{model.attrs['upstream_name']}' component")
    for doc in X or []:
        layers = doc._.elmo_layers
        if layers is not None:
            _check_width(model, int(layers.shape[-1]), "that annotated the docs")
    if model.maybe_get_dim("nO") is None:
        raise ValueError(
            "ElmoListener: width is null and no 'elmo' component is linked to tell it the biLM's width: add an "
            "'elmo' pipe before this component (the listener's upstream setting names it, or \"*\"), initialize "
            "with docs the 'elmo' pipe annotated, or set width to 2 x projection_dim."
        )


def forward(model: Model, docs: List[Doc], is_train: bool) -> Tuple[List[Floats3d], Callable]:
    ops = model.ops
    outputs = []
    missing = [doc for doc in docs if doc._.elmo_layers is None]
    if missing:
        upstream = _UPSTREAM.get(model.id)
        problem = NOT_LINKED if upstream is None else upstream_problem(upstream, initializing=False)
        if problem is not None:
            raise ValueError(problem)
        assert upstream is not None
        upstream.annotate(missing)  # the frozen biLM's features, as if the pipe had run (cached likewise)
    for doc in docs:
        layers = doc._.elmo_layers
        if layers.shape[-1] != model.maybe_get_dim("nO"):
            _check_width(model, int(layers.shape[-1]), "that annotated the docs")
        check_alignment(doc, layers)  # retokenized after the elmo pipe ran: row i is no longer token i
        outputs.append(ops.asarray3f(cast(Floats3d, numpy.asarray(layers, dtype="float32"))))

    def backprop(dY: List[Floats3d]) -> List[Doc]:
        return []  # the biLM is frozen

    return outputs, backprop
