"""The registered weights loader that fills the biLM layer: `spacy-elmo.WeightsLoader.v1`.

    [initialize.components.elmo.weights_loader]
    @model_loaders = "spacy-elmo.WeightsLoader.v1"
    path = ${paths.elmo_weights}

It lives in Thinc's `model_loaders` registry, the one spacy-curated-transformers creates with
`thinc.registry.create("model_loaders", entry_points=True)`, so both packages' loaders resolve in one
pipeline whichever is imported first. Entry points: group `thinc_model_loaders`.
"""
from pathlib import Path
from typing import Any, Callable, Optional

import catalogue
from spacy.util import registry
from thinc.api import ConfigValidationError, Model

from ..loading import load_weights_dir, weights_dir_problem
from .bilm_model import set_bilm

# (model, X, Y) -> model, as spacy-curated-transformers' loaders: usable as the model's Thinc init.
WeightsLoader = Callable[..., Model]

if not hasattr(registry, "model_loaders"):
    # Thinc's namespace, but on spaCy's registry class rather than through thinc.registry.create:
    # spacy-curated-transformers calls thinc.registry.create("model_loaders") unconditionally at import and
    # fails if thinc.registry already has one. catalogue keeps entries per namespace, so this registry and
    # the one curated creates later share every entry, and spaCy (which resolves through its own registry
    # class, a subclass of Thinc's) finds both packages' loaders either way.
    registry.model_loaders = catalogue.create("thinc", "model_loaders", entry_points=True)  # type: ignore[attr-defined]


@registry.model_loaders("spacy-elmo.WeightsLoader.v1")  # type: ignore[attr-defined]
def create_weights_loader(path: Optional[Path]) -> WeightsLoader:
    """[initialize.components.elmo.weights_loader]: the biLM in `path` (options.json + weights.hdf5).
    The directory is checked when the config is resolved, so `spacy debug config` and the start of
    `spacy train` name a missing one; the weights are read once, when the pipe is initialized."""
    problem = weights_dir_problem(path)
    if problem is not None:
        raise ConfigValidationError(
            title="ELMo weights not found",
            errors=[{"loc": ["initialize", "components", "elmo", "weights_loader", "path"], "msg": problem}],
            desc="Point it at a directory with the biLM's options.json + weights.hdf5, e.g. --paths.elmo_weights DIR "
                 "(written by `spacy elmo pretrain` or downloaded from AllenNLP).",
        )
    directory = Path(path)  # type: ignore[arg-type]

    def load(model: Model, X: Any = None, Y: Any = None) -> Model:
        set_bilm(model, load_weights_dir(directory))
        return model

    return load
