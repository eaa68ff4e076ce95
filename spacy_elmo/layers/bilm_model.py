"""The PyTorch biLM as a Thinc layer: the `elmo` pipe's model.

    model = BiLMModel(precision="float32")        # the weights arrive later: set_bilm(model, bilm)
    Y = model.predict([doc, span, ["Hello", "world"]])   # per sequence (n_layers + 1, n_tokens, 2P) float32

A layer of our own around a PyTorchShim rather than PyTorchWrapper, because the biLM is frozen and its
weights are not known when the pipe is built (spacy.load builds the pipe, then from_disk brings them):
- the shim may hold no biLM yet; `set_bilm` puts one in on the device of the model's ops;
- it serialises in bilm-tf's interchange layout (options.json + weights.hdf5 bytes), not a torch pickle, so
  `model.from_bytes` rebuilds a biLM of any size, bit for bit, with every file checked before use;
- a device move (`model.to_gpu` / `to_cpu`, through Thinc) re-applies the inference precision, whose
  converted weights (bfloat16 / int8 copies) belong to one device;
- the forward pass never records gradients and keeps the module in eval mode (PyTorchShim.predict would
  switch it back to train mode after every call).
"""
from typing import Any, Callable, List, Optional, Sequence, Tuple, Union, cast

import srsly
import torch
from spacy.tokens import Doc, Span
from thinc.api import CupyOps, Model, MPSOps, Ops, PyTorchShim, torch2xp
from thinc.types import Floats3d
from thinc.util import get_torch_default_device

from ..bilm import PRECISIONS, BiLM
from ..bilm.char_cnn import CharCNNCache
from ..loading import ALL_WEIGHT_FILES, ElmoWeightsError, bilm_from_files, bilm_to_files, missing_weight_files

NAME = "elmo-bilm"
Sequence_ = Union[Doc, Span, Sequence[str]]
InT = List[Sequence_]
OutT = List[Floats3d]


def torch_device(ops: Ops) -> torch.device:
    """The torch device that holds the arrays of `ops` (as thinc.util.get_torch_default_device, for given ops)."""
    if isinstance(ops, CupyOps):
        return torch.device("cuda", ops.device_id)
    if isinstance(ops, MPSOps):
        return torch.device("mps")
    return torch.device("cpu")


class BiLMShim(PyTorchShim):
    """PyTorchShim for a frozen BiLM that may arrive after construction (see the module docstring)."""

    def __init__(self, bilm: Optional[BiLM] = None, *, precision: str = "float32", mixed_precision: bool = False,
                 token_cache_size: int = 0) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"elmo: precision must be one of {PRECISIONS}, got {precision!r}")
        check_token_cache_size(token_cache_size)
        config = {"precision": precision, "mixed_precision": bool(mixed_precision), "token_cache_size": int(token_cache_size)}
        super().__init__(None, config=config, mixed_precision=bool(mixed_precision))
        if bilm is not None:
            self.set_bilm(bilm, get_torch_default_device())

    @property
    def bilm(self) -> Optional[BiLM]:
        return self._model

    @property
    def device(self) -> torch.device:
        return get_torch_default_device() if self._model is None else self._model.bos_ids.device

    def set_bilm(self, bilm: BiLM, device: torch.device) -> None:
        bilm.to(device)
        bilm.eval()
        for param in bilm.parameters():
            param.requires_grad_(False)
        bilm.set_precision(self.cfg["precision"])  # what this device supports (warns and runs float32 if not)
        size = int(self.cfg.get("token_cache_size", 0))  # absent from shims serialised before the setting
        bilm.char_cache = CharCNNCache(size) if size > 0 else None
        self._model = bilm

    def to_device(self, device_type: str, device_id: int) -> None:
        if self._model is None:
            return
        super().to_device(device_type, device_id)
        self._model.set_precision(self.cfg["precision"])  # converted weights belong to the old device

    def finish_update(self, optimizer) -> None:
        """Frozen: there is nothing to update."""

    def to_bytes(self) -> bytes:
        files = None if self._model is None else bilm_to_files(self._model)
        return srsly.msgpack_dumps({"config": self.cfg, "files": files})

    def from_bytes(self, bytes_data: bytes) -> "BiLMShim":
        msg = srsly.msgpack_loads(bytes_data)
        if not isinstance(msg, dict) or set(msg) != {"config", "files"}:
            raise ValueError("BiLMShim.from_bytes: the data was not written by BiLMShim.to_bytes.")
        self.cfg = dict(msg["config"])
        files = msg["files"]
        if files is None:
            self._model = None
        else:
            if not isinstance(files, dict) or missing_weight_files(files) or any(n not in ALL_WEIGHT_FILES for n in files):
                raise ValueError("BiLMShim.from_bytes: expected exactly the files of one saved biLM (options.json + "
                                 "weights.hdf5, or an ELMoForManyLangs model's), as BiLMShim.to_bytes writes them.")
            self.set_bilm(bilm_from_files(files), get_torch_default_device())
        return self


def check_token_cache_size(token_cache_size: object) -> None:
    if isinstance(token_cache_size, bool) or not isinstance(token_cache_size, int) or token_cache_size < 0:
        raise ValueError(f"elmo: token_cache_size must be a whole number >= 0 (0 = off, e.g. 50000 word types), "
                         f"got {token_cache_size!r}")


def BiLMModel(bilm: Optional[BiLM] = None, *, precision: str = "float32", mixed_precision: bool = False,
              token_cache_size: int = 0) -> Model[InT, OutT]:
    """Token sequences (Docs, Spans or lists of strings) -> their biLM layers, each (n_layers + 1, n_tokens, 2P)
    float32 on the model's device. `mixed_precision` runs the biLM under float16 autocast on CUDA;
    `precision` ("float32" exact | "bfloat16" | "int8") is the biLM's own inference precision;
    `token_cache_size` > 0 keeps the token vectors (char CNN output) of that many recent word types."""
    model: Model[InT, OutT] = Model(
        NAME,
        forward,
        init=init,
        dims={"nO": None, "nL": None},
        shims=[BiLMShim(precision=precision, mixed_precision=mixed_precision, token_cache_size=token_cache_size)],
    )
    if bilm is not None:
        set_bilm(model, bilm)
    return model


def _shim(model: Model) -> BiLMShim:
    return cast(BiLMShim, model.shims[0])


def get_bilm(model: Model) -> Optional[BiLM]:
    return _shim(model).bilm


def set_bilm(model: Model, bilm: BiLM) -> None:
    """Put `bilm` into the layer, on the device of the layer's ops. The dims follow the biLM: its shape is
    the truth, whatever a tool set before (spacy debug model sets nO = 7 on models it cannot initialize)."""
    _shim(model).set_bilm(bilm, torch_device(model.ops))
    model.set_dim("nO", bilm.output_dim, force=True)
    model.set_dim("nL", bilm.n_outputs, force=True)


def require_bilm(model: Model) -> BiLM:
    bilm = get_bilm(model)
    if bilm is None:
        raise ElmoWeightsError(
            "The ELMo biLM layer has no weights yet. They come from a weights loader at initialize "
            "([initialize.components.elmo.weights_loader] in a config), from a saved pipeline (from_disk / "
            "from_bytes), or from set_bilm(model, spacy_elmo.load_bilm(...))."
        )
    return bilm


def init(model: Model, X: Optional[InT] = None, Y: Optional[OutT] = None) -> None:
    """Nothing to learn. The pipe replaces this init by its weights loader (as spacy-curated-transformers
    does); without one the weights must be there already."""
    require_bilm(model)


def _words(sequence: Sequence_) -> List[str]:
    if isinstance(sequence, (Doc, Span)):
        return [token.text for token in sequence]
    if isinstance(sequence, str):
        raise TypeError(f"{NAME}: each input is a Doc, a Span or a list of token strings, not a string ({sequence[:40]!r}).")
    words = list(sequence)
    if not all(isinstance(word, str) for word in words):
        raise TypeError(f"{NAME}: a token list must hold strings only.")
    return words


def forward(model: Model[InT, OutT], X: InT, is_train: bool) -> Tuple[OutT, Callable[[OutT], InT]]:
    bilm = require_bilm(model)
    shim = _shim(model)
    words = [_words(sequence) for sequence in X]

    def backprop(dY: OutT) -> InT:
        return []  # frozen: no gradient reaches the biLM or its input

    if not words:
        return [], backprop
    device = shim.device
    ids = torch.as_tensor(bilm.token_ids(words), device=device)
    autocast = shim.cfg["mixed_precision"] and device.type == "cuda"
    with torch.no_grad(), torch.autocast(device_type=device.type, dtype=torch.float16, enabled=autocast):
        activations = bilm(ids).activations.float()  # (L, B, T, 2P)
    array: Any  # (L, B, T, 2P): numpy or cupy
    if device.type == "cpu" or not isinstance(model.ops, CupyOps):
        array = model.ops.asarray(activations.cpu().numpy())
    else:
        array = torch2xp(activations, ops=model.ops)  # stays on the GPU (dlpack, no copy)
    return [array[:, i, : len(w)] for i, w in enumerate(words)], backprop
