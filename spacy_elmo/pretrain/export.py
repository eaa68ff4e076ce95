"""Export a pretrained biLM in bilm-tf's interchange layout: DIR/options.json + DIR/weights.hdf5 +
DIR/vocab.txt. weights.hdf5 holds the biLM datasets written by spacy_elmo.bilm.weights.bilm_to_arrays
(what load_bilm reads) plus, when the head has them, bilm-tf's softmax/W and softmax/b, which load_bilm
ignores. No pickle: HDF5 and JSON only. Every file is replaced atomically."""
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Optional, Union

import h5py
import numpy

from ..bilm.bilm import BiLM
from ..bilm.heads import LMHead
from ..bilm.weights import bilm_to_arrays
from .checkpoint import atomic_write
from .config import Settings
from .progress import Progress
from .state import TrainingState
from .vocab import Vocab

if TYPE_CHECKING:
    from .model import LanguageModel

EXPORTED_FILES = ("options.json", "weights.hdf5", "vocab.txt")  # what a run leaves for users of the biLM


def export_pretrained(directory: Union[str, Path], bilm: BiLM, vocab: Vocab, head: Optional[LMHead] = None,
                      extra: Optional[Dict[str, Any]] = None) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = bilm_to_arrays(bilm)
    if head is not None:
        arrays.update(head.export_arrays())

    def write_hdf5(tmp: str) -> None:
        with h5py.File(tmp, "w") as fout:
            for key, array in arrays.items():
                fout.create_dataset(key, data=numpy.ascontiguousarray(array, dtype=numpy.float32))

    atomic_write(directory / "weights.hdf5", write_hdf5)
    options = bilm.options.to_dict()
    options.update(extra or {})
    options["n_tokens_vocab"] = len(vocab)
    options.setdefault("bidirectional", True)
    text = json.dumps(options, indent=2)
    atomic_write(directory / "options.json", lambda tmp: Path(tmp).write_text(text, encoding="utf8"))
    vocab.to_file(directory / "vocab.txt")
    return directory


def export_run(output: Path, model: "LanguageModel", vocab: Vocab, state: TrainingState, settings: Settings,
               progress: Progress) -> Dict[str, Any]:
    """At the end of a run: export the best dev evaluation's weights (training.export = "best", with a dev set)
    or the last step's, and say which step they are from. The final checkpoint is already written."""
    dev: Optional[Dict[str, Any]] = None
    if settings.training.export == "best" and state.best is not None:
        which, step, dev = "best", state.best["step"], state.best
        if step != state.step and state.best_weights is not None:  # rank 0 keeps them with every best evaluation
            model.load_state_dict(state.best_weights)
    else:
        which, step = "last", state.step
        dev = state.history[-1] if state.history and state.history[-1]["step"] == state.step else None
    s = settings.softmax
    extra = {"n_train_tokens": state.tokens, "n_epochs": state.epoch, "all_clip_norm_val": settings.training.grad_clip,
             "n_negative_samples_batch": s.n_samples if s.type == "sampled" else None, "softmax": s.type,
             "exported_step": step}
    export_pretrained(output, model.bilm, vocab, model.head, extra=extra)
    progress.log("export", weights=which, step=step, perplexity=dev["perplexity"] if dev else None)
    return {"weights": which, "step": step, "dev": dev}


__all__ = ["export_pretrained", "export_run", "EXPORTED_FILES"]
