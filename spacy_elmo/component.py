"""The `elmo` pipe: runs the frozen biLM over docs and stores its layers on them.

    nlp.add_pipe("elmo", config={"weights": DIR})      # DIR holds options.json + weights.hdf5

Writes doc._.elmo_layers (n_layers + 1, len(doc), 2P) in float16 or float32, and the component's fixed
mix (doc._.elmo_mix) from which doc._.elmo / token._.elmo / span._.elmo are computed on access.
spaCy never initializes frozen components, so the weights are loaded in the constructor, and to_disk
writes them into the pipeline directory in the same options.json + weights.hdf5 layout.
"""
import hashlib
import os
import shutil
import sys
import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy
import srsly
import torch
from spacy.language import Language
from spacy.pipeline import Pipe
from spacy.tokens import Doc, Span, Token
from spacy.util import minibatch
from thinc.api import Config, Model
from thinc.util import get_torch_default_device

from . import span_getters  # noqa: F401  (registers the span getters used by the default config)
from .bilm import PRECISIONS, BiLM, OptionsError, WeightFileError, load_bilm, save_bilm
from .bilm.atomic import atomic_write
from .bilm.chars import batch_to_char_ids

DEFAULT_CONFIG_STR = """
[elmo]
weights = null
dtype = "float16"
mix_weights = null
mix_gamma = 1.0
token_budget = 4096
cache_size = 0
vector_hooks = false
mixed_precision = false
precision = "float32"

[elmo.get_spans]
@span_getters = "spacy-elmo.long_doc_spans.v1"
max_length = 256
window = 128
stride = 96
"""
DEFAULT_CONFIG = Config().from_str(DEFAULT_CONFIG_STR)
DTYPES = ("float16", "float32")
OPTIONS_FILE = "options.json"
WEIGHTS_FILE = "weights.hdf5"
CFG_FILE = "cfg"
BYTES_FILES = (OPTIONS_FILE, WEIGHTS_FILE, CFG_FILE)  # the only entries to_bytes writes and from_bytes accepts


class ElmoWeightsError(ValueError):
    def __init__(self, message: str, missing: bool = False) -> None:
        super().__init__(message)
        self.missing = missing


# ---------------------------------------------------------------- extensions
def _mix_of(doc: Doc, n_layers: int) -> Tuple[numpy.ndarray, float]:
    mix = doc._.elmo_mix
    if not mix:
        return numpy.full(n_layers, 1.0 / n_layers, dtype="float32"), 1.0
    return numpy.asarray(mix["weights"], dtype="float32"), float(mix["gamma"])


def _mixed(doc: Doc, layers: numpy.ndarray) -> numpy.ndarray:
    """(L, ..., D) slice of the doc's layers -> (..., D) float32 with the doc's fixed mix."""
    weights, gamma = _mix_of(doc, layers.shape[0])
    return (gamma * numpy.tensordot(weights, layers.astype("float32"), axes=1)).astype("float32")


def doc_layers(doc: Doc) -> Optional[numpy.ndarray]:
    """doc._.elmo_layers, checked against the doc: spaCy cannot tell the pipe that a doc was retokenized
    after it ran, and row i would then no longer be token i."""
    layers = doc._.elmo_layers
    if layers is not None and layers.shape[1] != len(doc):
        raise ValueError(
            f"doc._.elmo_layers has {layers.shape[1]} token rows but the doc has {len(doc)} tokens: the doc was "
            "retokenized (tokens merged or split) after the 'elmo' pipe ran. Put the 'elmo' pipe after any "
            "component that merges or splits tokens, or run it again on the changed doc."
        )
    return layers


def get_doc_elmo(doc: Doc) -> Optional[numpy.ndarray]:
    layers = doc_layers(doc)
    return None if layers is None else _mixed(doc, layers)


def get_token_elmo(token: Token) -> Optional[numpy.ndarray]:
    layers = doc_layers(token.doc)
    return None if layers is None else _mixed(token.doc, layers[:, token.i])


def get_span_elmo(span: Span) -> Optional[numpy.ndarray]:
    layers = doc_layers(span.doc)
    if layers is None:
        return None
    if len(span) == 0:
        return numpy.zeros(layers.shape[-1], dtype="float32")
    # The mix is linear, so the mean of mixed vectors is the mix of the mean.
    return _mixed(span.doc, layers[:, span.start : span.end].astype("float32").mean(1))


def register_extensions() -> None:
    for cls, name, kwargs in (
        (Doc, "elmo_layers", {"default": None}),
        (Doc, "elmo_mix", {"default": None}),
        (Doc, "elmo", {"getter": get_doc_elmo}),
        (Token, "elmo", {"getter": get_token_elmo}),
        (Span, "elmo", {"getter": get_span_elmo}),
    ):
        if not cls.has_extension(name):
            cls.set_extension(name, **kwargs)


register_extensions()


# Opt-in hooks so .vector / .similarity use ELMo. Module-level functions so docs stay picklable.
def _cosine(a: numpy.ndarray, b: numpy.ndarray) -> float:
    norm = float(numpy.linalg.norm(a) * numpy.linalg.norm(b))
    return float(numpy.dot(a, b) / norm) if norm else 0.0


def _doc_vector(doc: Doc) -> numpy.ndarray:
    return get_span_elmo(doc[:])


def _has_vector(obj) -> bool:
    return obj.doc._.elmo_layers is not None if not isinstance(obj, Doc) else obj._.elmo_layers is not None


def _similarity(obj, other) -> float:
    return _cosine(obj.vector, other.vector)


def set_vector_hooks(doc: Doc) -> None:
    doc.user_hooks.update({"vector": _doc_vector, "has_vector": _has_vector, "similarity": _similarity})
    doc.user_span_hooks.update({"vector": get_span_elmo, "has_vector": _has_vector, "similarity": _similarity})
    doc.user_token_hooks.update({"vector": get_token_elmo, "has_vector": _has_vector, "similarity": _similarity})


# ---------------------------------------------------------------- cache
class ActivationCache:
    """LRU of per-sequence activations keyed by a digest of the token texts, bounded by total tokens.
    Valid because the biLM is frozen and stateless: the same tokens always give the same layers."""

    def __init__(self, max_tokens: int) -> None:
        self.max_tokens = max(0, int(max_tokens))
        self._items: "OrderedDict[bytes, numpy.ndarray]" = OrderedDict()
        self.n_tokens = 0
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(words: Sequence[str]) -> bytes:
        digest = hashlib.blake2b(digest_size=16)
        for word in words:
            data = word.encode("utf8", "surrogatepass")
            digest.update(len(data).to_bytes(4, "little"))
            digest.update(data)
        return digest.digest()

    def get(self, key: bytes) -> Optional[numpy.ndarray]:
        if not self.max_tokens:
            return None
        value = self._items.get(key)
        if value is None:
            self.misses += 1
            return None
        self._items.move_to_end(key)
        self.hits += 1
        return value

    def put(self, key: bytes, value: numpy.ndarray) -> None:
        n = value.shape[1]
        if not self.max_tokens or n > self.max_tokens or key in self._items:
            return
        self._items[key] = value
        self.n_tokens += n
        while self.n_tokens > self.max_tokens:
            _, old = self._items.popitem(last=False)
            self.n_tokens -= old.shape[1]

    def clear(self) -> None:
        self._items.clear()
        self.n_tokens = 0


# ---------------------------------------------------------------- loading
def load_weights_dir(weights: Union[str, Path, None]) -> BiLM:
    if weights is None or str(weights) in ("", "None", "null"):
        raise ElmoWeightsError(
            "The 'elmo' component needs its weights: nlp.add_pipe('elmo', config={'weights': DIR}) where DIR "
            f"holds {OPTIONS_FILE} + {WEIGHTS_FILE} (in a config: [components.elmo] weights = ${{paths.elmo_weights}}).",
            missing=True,
        )
    path = Path(weights)
    if not path.is_dir():
        raise ElmoWeightsError(
            f"ELMo weights directory not found: {path}. It must be a directory holding {OPTIONS_FILE} and {WEIGHTS_FILE}.",
            missing=True,
        )
    absent = [name for name in (OPTIONS_FILE, WEIGHTS_FILE) if not (path / name).is_file()]
    if absent:
        raise ElmoWeightsError(f"ELMo weights directory {path} has no {' or '.join(absent)}; it needs {OPTIONS_FILE} and {WEIGHTS_FILE}.")
    try:
        return load_bilm(path / OPTIONS_FILE, path / WEIGHTS_FILE)
    except (OptionsError, WeightFileError) as err:
        raise ElmoWeightsError(f"Cannot load ELMo weights from {path}: {err}") from err


def _construction_context() -> Optional[str]:
    """How the pipe is being built:
    "load"   inside spacy.load (spacy.util.load_model_from_path): from_disk follows at once with the
             pipeline directory's own copy of the weights, so the directory named in config.cfg (the
             training machine's) is not read at all; it may be gone, moved or broken;
    "config" inside another Language.from_config (spacy train, nlp.from_config): the weights may still
             arrive through from_disk / from_bytes, so a missing directory is not yet an error;
    None     nlp.add_pipe and direct construction: the weights are needed now."""
    context = None
    frame = sys._getframe(1)
    while frame is not None:
        code = frame.f_code
        if code.co_name == "load_model_from_path" and code.co_filename.endswith(("spacy/util.py", "spacy\\util.py")):
            return "load"
        if code.co_name == "from_config" and code.co_filename.endswith(("spacy/language.py", "spacy\\language.py")):
            context = "config"
        frame = frame.f_back  # type: ignore[assignment]
    return context


def _read_saved_cfg(path: Path) -> Dict:
    """The settings a saved pipe restores (mix and storage dtype), checked like the constructor checks
    them: the file may have been edited by hand."""
    try:
        cfg = srsly.read_json(path)
    except ValueError as err:
        raise ElmoWeightsError(f"{path} is not valid JSON ({err}); it holds the saved 'elmo' settings.") from err
    if not isinstance(cfg, dict):
        raise ElmoWeightsError(f"{path} must hold a JSON object of the 'elmo' settings, not {type(cfg).__name__}.")
    saved = {k: cfg[k] for k in ("mix_weights", "mix_gamma", "dtype") if k in cfg}
    problems = []
    if "dtype" in saved and saved["dtype"] not in DTYPES:
        problems.append(f"dtype is {saved['dtype']!r}; it must be one of {', '.join(DTYPES)}")
    mix = saved.get("mix_weights")
    if mix is not None and not (isinstance(mix, list) and all(isinstance(w, (int, float)) and not isinstance(w, bool) for w in mix)):
        problems.append(f"mix_weights is {mix!r}; it must be null or a list of numbers, one per layer")
    gamma = saved.get("mix_gamma", 1.0)
    if not isinstance(gamma, (int, float)) or isinstance(gamma, bool):
        problems.append(f"mix_gamma is {gamma!r}; it must be a number")
    if problems:
        raise ElmoWeightsError(f"{path}: " + "; ".join(problems) + ". Fix the file or save the pipeline again.")
    return saved


# ---------------------------------------------------------------- the pipe
class ElmoComponent(Pipe):
    """Frozen ELMo biLM as an annotating pipe. Not trainable; downstream models mix its layers."""

    def __init__(
        self,
        vocab,
        name: str = "elmo",
        *,
        weights: Optional[str],
        get_spans: Callable[[List[Doc]], List[List[Span]]],
        dtype: str = "float16",
        mix_weights: Optional[List[float]] = None,
        mix_gamma: float = 1.0,
        token_budget: int = 4096,
        cache_size: int = 0,
        vector_hooks: bool = False,
        mixed_precision: bool = False,
        precision: str = "float32",
        defer_missing_weights: bool = False,
        weights_from_disk: bool = False,
    ) -> None:
        if dtype not in DTYPES:
            raise ValueError(f"elmo: dtype must be one of {DTYPES}, got {dtype!r}")
        if precision not in PRECISIONS:
            raise ValueError(f"elmo: precision must be one of {PRECISIONS}, got {precision!r}")
        if token_budget < 1:
            raise ValueError(f"elmo: token_budget must be positive, got {token_budget}")
        self.vocab = vocab
        self.name = name
        self.get_spans = get_spans
        self.cfg: Dict = {
            "weights": None if weights is None else str(weights),
            "dtype": dtype,
            "mix_weights": None if mix_weights is None else [float(w) for w in mix_weights],
            "mix_gamma": float(mix_gamma),
            "token_budget": int(token_budget),
            "cache_size": int(cache_size),
            "vector_hooks": bool(vector_hooks),
            "mixed_precision": bool(mixed_precision),
            # inference precision of the biLM: "float32" (exact) | "bfloat16" | "int8" (bilm/precision.py)
            "precision": str(precision),
        }
        self.cache = ActivationCache(cache_size)
        self.listener_map: Dict[str, List[Model]] = {}
        self.bilm: Optional[BiLM] = None
        self._load_error: Optional[str] = None
        self._pid = os.getpid()
        if weights_from_disk:
            # spacy.load: from_disk brings the pipeline's own copy next; reading `weights` too would make
            # the pipeline depend on the training machine's directory (and read the weights twice).
            self._load_error = (
                f"The '{name}' component waits for its weights from the pipeline directory ({name}/{OPTIONS_FILE} + "
                f"{WEIGHTS_FILE}), and they were not loaded."
            )
            return
        try:
            self._set_bilm(load_weights_dir(weights))
        except ElmoWeightsError as err:
            if not (defer_missing_weights and err.missing):
                raise
            self._load_error = str(err)  # raised on first use unless from_disk brings the weights

    # -- spaCy plumbing
    @property
    def model(self) -> Optional[BiLM]:
        return self.bilm

    @property
    def width(self) -> int:
        return self._require_bilm().output_dim

    @property
    def n_layers(self) -> int:
        return self._require_bilm().n_outputs

    @property
    def listeners(self) -> List[Model]:
        return [m for models in self.listener_map.values() for m in models]

    @property
    def listening_components(self) -> List[str]:
        return list(self.listener_map.keys())

    def add_listener(self, listener: Model, component_name: str) -> None:
        self.listener_map.setdefault(component_name, [])
        if listener not in self.listener_map[component_name]:
            self.listener_map[component_name].append(listener)

    def remove_listener(self, listener: Model, component_name: str) -> bool:
        models = self.listener_map.get(component_name, [])
        if listener in models:
            models.remove(listener)
            if not models:
                del self.listener_map[component_name]
            return True
        return False

    def find_listeners(self, component) -> None:
        """Tell downstream ElmoListener nodes our width and layer count (checked at their initialize)."""
        model = getattr(component, "model", None)
        if not isinstance(model, Model):
            return
        for node in model.walk():
            if node.name == "elmo-listener" and node.attrs.get("upstream_name") in ("*", self.name):
                self.add_listener(node, component.name)
        self._tell_listeners()

    def _tell_listeners(self) -> None:
        # Under spacy.load the weights arrive after the listeners were found (from_disk): tell them then.
        if self.bilm is None:
            return
        for node in self.listeners:
            node.attrs["upstream_width"] = self.bilm.output_dim
            node.attrs["upstream_n_layers"] = self.bilm.n_outputs

    def initialize(self, get_examples=None, *, nlp=None) -> None:
        """Nothing to learn: the weights came with the constructor (spaCy skips this when frozen)."""
        self._require_bilm()

    def _set_bilm(self, bilm: BiLM) -> None:
        mix = self.cfg["mix_weights"]
        if mix is not None and len(mix) != bilm.n_outputs:
            raise ValueError(f"elmo: mix_weights has {len(mix)} values but the biLM has {bilm.n_outputs} layers (token layer + {bilm.n_outputs - 1} LSTM layers)")
        bilm.eval()
        for param in bilm.parameters():
            param.requires_grad_(False)
        bilm.set_precision(self.cfg.get("precision", "float32"))
        self.bilm = bilm
        self._load_error = None
        self.cache.clear()
        self._tell_listeners()

    def _require_bilm(self) -> BiLM:
        if self.bilm is None:
            raise ElmoWeightsError(self._load_error or "The 'elmo' component has no weights loaded.")
        return self.bilm

    def _device(self) -> torch.device:
        if self._pid != os.getpid():
            # A forked worker (nlp.pipe(n_process=N)): torch's inherited OpenMP pool can deadlock after
            # fork, and N workers should not each use every core. One thread per worker, as DataLoader does.
            self._pid = os.getpid()
            torch.set_num_threads(1)
        # Follow thinc's current ops: CupyOps after `spacy train --gpu-id N` / require_gpu -> cuda.
        bilm = self._require_bilm()
        device = get_torch_default_device()
        if next(bilm.parameters()).device != device:
            bilm.to(device)
            bilm.set_precision(self.cfg.get("precision", "float32"))  # what the new device supports
        return device

    # -- running
    def __call__(self, doc: Doc) -> Doc:
        self.set_annotations([doc], self.predict([doc]))
        return doc

    def pipe(self, stream: Iterable[Doc], *, batch_size: int = 128) -> Iterator[Doc]:
        for docs in minibatch(stream, size=batch_size):
            self.set_annotations(docs, self.predict(docs))
            yield from docs

    def _run(self, sequences: List[List[str]], device: torch.device) -> numpy.ndarray:
        bilm = self._require_bilm()
        ids = torch.as_tensor(batch_to_char_ids(sequences, bilm.options.max_characters_per_token), device=device)
        autocast = self.cfg["mixed_precision"] and device.type == "cuda"
        with torch.no_grad(), torch.autocast(device_type=device.type, dtype=torch.float16, enabled=autocast):
            activations = bilm(ids)["activations"]
        return activations.float().cpu().numpy()

    def predict(self, docs: Sequence[Doc]) -> List[numpy.ndarray]:
        """Per doc (L, len(doc), D) in the storage dtype. Spans from get_spans are cut from the docs,
        sorted by length and batched so that rows x longest <= token_budget; tokens in several
        overlapping spans get the average; tokens in no span stay zero."""
        bilm = self._require_bilm()
        L, D, dtype = bilm.n_outputs, bilm.output_dim, self.cfg["dtype"]
        # Per doc, the activations of its spans: (start, end, (L, end - start, D) in the storage dtype).
        pieces: List[List[Tuple[int, int, numpy.ndarray]]] = [[] for _ in docs]
        # Unique sequences still to run (repeats in a batch run once): key -> (words, [(doc, start, end)])
        todo: Dict[bytes, Tuple[List[str], List[Tuple[int, int, int]]]] = {}
        for i, spans in enumerate(self.get_spans(list(docs))):
            for span in spans:
                if len(span) == 0:
                    continue
                words = [token.text for token in span]
                key = ActivationCache.key(words)
                cached = self.cache.get(key) if key not in todo else None
                if cached is not None:
                    pieces[i].append((span.start, span.end, cached))
                else:
                    todo.setdefault(key, (words, []))[1].append((i, span.start, span.end))
        if todo:
            device = self._device()
            jobs = sorted(todo.items(), key=lambda item: -len(item[1][0]))
            budget = self.cfg["token_budget"]
            start = 0
            while start < len(jobs):
                longest = len(jobs[start][1][0])  # sorted: the first row is the longest
                batch = jobs[start : start + max(1, budget // longest)]
                start += len(batch)
                activations = self._run([words for _, (words, _) in batch], device)
                for j, (key, (words, targets)) in enumerate(batch):
                    layers = activations[:, j, : len(words)].astype(dtype)
                    layers.flags.writeable = False  # shared with the cache and with repeats: frozen features
                    self.cache.put(key, layers)
                    for i, s, e in targets:
                        pieces[i].append((s, e, layers))
        return [self._assemble(doc, doc_pieces, L, D, dtype) for doc, doc_pieces in zip(docs, pieces)]

    @staticmethod
    def _assemble(doc: Doc, pieces: List[Tuple[int, int, numpy.ndarray]], L: int, D: int, dtype: str) -> numpy.ndarray:
        """One doc's (L, len(doc), D) from its spans' activations: tokens in several overlapping spans get
        the average; tokens in no span stay zero. A doc that is one span (the usual case) is a plain copy."""
        if len(pieces) == 1 and pieces[0][0] == 0 and pieces[0][1] == len(doc):
            return pieces[0][2].copy()
        total = numpy.zeros((L, len(doc), D), dtype="float32")
        count = numpy.zeros(len(doc), dtype="int32")
        for s, e, layers in pieces:
            total[:, s:e] += layers
            count[s:e] += 1
        if count.max(initial=0) > 1:
            total /= numpy.maximum(count, 1)[None, :, None]
        return total.astype(dtype)

    def set_annotations(self, docs: Sequence[Doc], outputs: List[numpy.ndarray]) -> None:
        mix = self.cfg["mix_weights"]
        L = outputs[0].shape[0] if outputs else 0
        weights = mix if mix is not None else [1.0 / L] * L
        for doc, layers in zip(docs, outputs):
            doc._.elmo_layers = layers
            doc._.elmo_mix = {"weights": list(weights), "gamma": self.cfg["mix_gamma"]}
            if self.cfg["vector_hooks"]:
                set_vector_hooks(doc)

    # -- serialisation: the weights travel inside the pipeline directory
    def to_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        save_bilm(self._require_bilm(), path)
        text = srsly.json_dumps(self.cfg, indent=2)
        atomic_write(path / CFG_FILE, lambda tmp: Path(tmp).write_text(text, encoding="utf8"))

    def from_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()) -> "ElmoComponent":
        path = Path(path)
        if (path / CFG_FILE).exists():
            self.cfg.update(_read_saved_cfg(path / CFG_FILE))
        self._set_bilm(load_weights_dir(path))
        return self

    def to_bytes(self, *, exclude: Iterable[str] = tuple()) -> bytes:
        with tempfile.TemporaryDirectory() as tmp:
            self.to_disk(tmp)
            files = {name: (Path(tmp) / name).read_bytes() for name in BYTES_FILES}
        return srsly.msgpack_dumps(files)

    def from_bytes(self, data: bytes, *, exclude: Iterable[str] = tuple()) -> "ElmoComponent":
        # The blob may come from anywhere (a shared pickle, a download): its keys are never used as file
        # names. Only the three names to_bytes writes are accepted, and the files are written under our
        # own constants, so no key can point outside the temporary directory.
        try:
            files = srsly.msgpack_loads(data)
        except Exception as err:  # msgpack raises several unrelated types for damaged input
            raise ValueError(f"elmo.from_bytes: the data is not a serialised 'elmo' component ({err}).") from err
        if not isinstance(files, dict):
            raise ValueError(f"elmo.from_bytes: expected a mapping of {', '.join(BYTES_FILES)} to bytes, got {type(files).__name__}.")
        unexpected = sorted(repr(name) for name in files if name not in BYTES_FILES)
        if unexpected:
            raise ValueError(
                f"elmo.from_bytes: unexpected entries {', '.join(unexpected)}; a serialised 'elmo' component holds "
                f"only {', '.join(BYTES_FILES)}. Use bytes written by ElmoComponent.to_bytes."
            )
        absent = [name for name in (OPTIONS_FILE, WEIGHTS_FILE) if name not in files]
        wrong_type = [name for name in BYTES_FILES if name in files and not isinstance(files[name], bytes)]
        if absent or wrong_type:
            raise ValueError(
                "elmo.from_bytes: "
                + "; ".join(([f"missing {', '.join(absent)}"] if absent else []) + ([f"{', '.join(wrong_type)} not bytes"] if wrong_type else []))
                + ". Use bytes written by ElmoComponent.to_bytes."
            )
        with tempfile.TemporaryDirectory() as tmp:
            for name in BYTES_FILES:  # our names, not the blob's
                if name in files:
                    (Path(tmp) / name).write_bytes(files[name])
            self.from_disk(tmp)
        return self


@Language.factory(
    "elmo",
    default_config=DEFAULT_CONFIG["elmo"],
    assigns=["doc._.elmo_layers", "doc._.elmo", "token._.elmo", "span._.elmo"],
)
def make_elmo(
    nlp: Language,
    name: str,
    weights: Optional[str],
    get_spans: Callable[[List[Doc]], List[List[Span]]],
    dtype: str,
    mix_weights: Optional[List[float]],
    mix_gamma: float,
    token_budget: int,
    cache_size: int,
    vector_hooks: bool,
    mixed_precision: bool,
    precision: str,
) -> ElmoComponent:
    context = _construction_context()
    return ElmoComponent(
        nlp.vocab,
        name,
        weights=weights,
        get_spans=get_spans,
        dtype=dtype,
        mix_weights=mix_weights,
        mix_gamma=mix_gamma,
        token_budget=token_budget,
        cache_size=cache_size,
        vector_hooks=vector_hooks,
        mixed_precision=mixed_precision,
        precision=precision,
        defer_missing_weights=context is not None,
        weights_from_disk=context == "load",
    )
