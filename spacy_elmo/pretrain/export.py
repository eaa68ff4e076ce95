"""Export a pretrained biLM in bilm-tf's interchange layout: DIR/options.json + DIR/weights.hdf5 +
DIR/vocab.txt. weights.hdf5 holds the biLM datasets written by spacy_elmo.bilm.weights.bilm_to_arrays
(what load_bilm reads) plus, when the head has them, bilm-tf's softmax/W and softmax/b, which load_bilm
ignores. No pickle: HDF5 and JSON only. Every file is replaced atomically."""
import json
from pathlib import Path
from typing import Any, Dict, Optional, Union

import h5py
import numpy

from ..bilm.bilm import BiLM
from ..bilm.heads import LMHead
from ..bilm.weights import bilm_to_arrays
from .checkpoint import atomic_write
from .vocab import Vocab

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


__all__ = ["export_pretrained", "EXPORTED_FILES"]
