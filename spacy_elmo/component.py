"""The `elmo` pipe: runs the frozen biLM over docs and stores its layers on them.

    nlp.add_pipe("elmo", config={"weights": DIR})      # DIR holds options.json + weights.hdf5

Its `model` is a Thinc layer around the PyTorch biLM (layers/bilm_model.py). The weights arrive the way
spaCy brings weights to frozen encoders: in a training config from a registered loader in
`[initialize.components.elmo.weights_loader]` (layers/loaders.py), run by `nlp.initialize()` / `spacy train`; in a
saved pipeline from its own copy (from_disk / from_bytes). `weights` in the factory config is the one-line
convenience for API users: that directory is read at the pipe's first use (a call, initialize, or its
width) unless a saved pipeline's own copy arrived first, so `spacy.load` never reads the directory a
pipeline's weights first came from.

Writes doc._.elmo_layers (n_layers + 1, len(doc), 2P) in float16 or float32, and the component's fixed
mix (doc._.elmo_mix) from which doc._.elmo / token._.elmo / span._.elmo are computed (extensions.py).
"""
import numbers
import os
import tempfile
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy
import srsly
import torch
from spacy.language import Language
from spacy.pipeline import Pipe
from spacy.tokens import Doc, Span
from spacy.training import Example
from spacy.util import minibatch
from thinc.api import Config, Model

from . import span_getters  # noqa: F401  (registers the span getters used by the default config)
from . import trf_bridge
from .bilm import PRECISIONS, BiLM, save_bilm_dir
from .bilm.atomic import atomic_write
from .cache import ActivationCache
from .extensions import register_extensions, restore_vector_hooks_after_pipe, set_vector_hooks, token_offsets
from .layers.bilm_model import BiLMModel, check_token_cache_size, get_bilm, set_bilm
from .layers.listener import NAME as LISTENER_NAME
from .layers.listener import bind_pipeline, link_upstream, unlink_upstream
from .layers.loaders import WeightsLoader
from .loading import (
    ALL_WEIGHT_FILES,
    DTYPES,
    OPTIONS_FILE,
    WEIGHTS_FILE,
    ElmoWeightsError,
    bilm_from_files,
    bilm_to_files,
    load_weights_dir,
    missing_weight_files,
    read_saved_cfg,
)

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
token_cache_size = 0

[elmo.get_spans]
@span_getters = "spacy-elmo.long_doc_spans.v1"
max_length = 256
window = 128
stride = 96
"""
DEFAULT_CONFIG = Config().from_str(DEFAULT_CONFIG_STR)
CFG_FILE = "cfg"
BYTES_FILES = (*ALL_WEIGHT_FILES, CFG_FILE)  # the only entries to_bytes writes and from_bytes accepts
NO_WEIGHTS = (
    "The '{name}' component has no weights. Give it a directory holding " + OPTIONS_FILE + " + " + WEIGHTS_FILE + ":\n"
    "- in Python: nlp.add_pipe('elmo', config={{'weights': DIR}});\n"
    "- in a training config: [initialize.components.{name}.weights_loader] with "
    "@model_loaders = \"spacy-elmo.WeightsLoader.v1\" and path = DIR, read by nlp.initialize() / spacy train "
    "(leave '{name}' out of [training] frozen_components: spaCy does not initialize frozen components);\n"
    "- or load a saved pipeline, which carries its own copy."
)

register_extensions()


def plan_batches(lengths: Sequence[int], token_budget: int) -> List[List[int]]:
    """Indices of the sequences, grouped into biLM batches: longest first (little padding), and each batch
    holds at most token_budget // its longest length rows (a sequence longer than the budget runs alone)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])  # stable: equal lengths keep their order
    batches: List[List[int]] = []
    start = 0
    while start < len(order):
        size = max(1, token_budget // max(1, lengths[order[start]]))
        batches.append(order[start : start + size])
        start += size
    return batches


FLOAT32_MAX = float(numpy.finfo(numpy.float32).max)


def mix_problems(mix_weights: object, mix_gamma: object) -> List[str]:
    """What is wrong with a mix (empty when usable): the mix is applied in float32, where a value beyond
    its range becomes inf and every feature NaN."""
    problems = []

    def finite(value: object) -> bool:
        return isinstance(value, numbers.Real) and not isinstance(value, bool) and abs(float(value)) <= FLOAT32_MAX

    if mix_weights is not None and not (isinstance(mix_weights, list) and all(finite(w) for w in mix_weights)):
        problems.append(f"mix_weights is {mix_weights!r}; it must be null or a list of finite float32 numbers, one per layer")
    if not finite(mix_gamma):
        problems.append(f"mix_gamma is {mix_gamma!r}; it must be a finite float32 number")
    return problems


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
        token_cache_size: int = 0,
    ) -> None:
        if dtype not in DTYPES:
            raise ValueError(f"elmo: dtype must be one of {DTYPES}, got {dtype!r}")
        if precision not in PRECISIONS:
            raise ValueError(f"elmo: precision must be one of {PRECISIONS}, got {precision!r}")
        if token_budget < 1:
            raise ValueError(f"elmo: token_budget must be positive, got {token_budget}")
        check_token_cache_size(token_cache_size)
        mix = None if mix_weights is None else list(mix_weights)
        problems = mix_problems(mix, mix_gamma)
        if problems:
            raise ValueError("elmo: " + "; ".join(problems) + ".")
        self.vocab = vocab
        self.name = name
        self.get_spans = get_spans
        self.cfg: Dict = {
            "weights": None if weights in (None, "", "None", "null") else str(weights),
            "dtype": dtype,
            "mix_weights": None if mix_weights is None else [float(w) for w in mix_weights],
            "mix_gamma": float(mix_gamma),
            "token_budget": int(token_budget),
            "cache_size": int(cache_size),
            "vector_hooks": bool(vector_hooks),
            "mixed_precision": bool(mixed_precision),
            # inference precision of the biLM: "float32" (exact) | "bfloat16" | "int8" (bilm/precision.py)
            "precision": str(precision),
            # A serving setting, unlike the training-only cache_size: the char CNN's token vectors of this many
            # recent word types (0 = off), bounded at about token_cache_size x projection_dim x 4 bytes.
            "token_cache_size": int(token_cache_size),
        }
        self.model: Model = BiLMModel(precision=precision, mixed_precision=mixed_precision, token_cache_size=token_cache_size)
        self.cache = ActivationCache(cache_size)
        self.listener_map: Dict[str, List[Model]] = {}
        self._pid = os.getpid()
        trf_bridge.install_extension()  # doc._.trf_data, where spacy-transformers is installed (trf_bridge.py)

    # -- the biLM and where its weights come from
    @property
    def bilm(self) -> BiLM:
        """The torch module inside the Thinc model; reading it is a use (the `weights` setting is read now
        if nothing brought the weights yet)."""
        return self._require_bilm()

    def _require_bilm(self) -> BiLM:
        bilm = get_bilm(self.model)
        if bilm is not None:
            self._check_fits(self.cfg, bilm)  # a loader at initialize may have brought one that does not
            return bilm
        weights = self.cfg["weights"]
        if weights is None:
            raise ElmoWeightsError(NO_WEIGHTS.format(name=self.name))
        try:
            self._set_bilm(load_weights_dir(weights))
        except ElmoWeightsError as err:
            raise ElmoWeightsError(f"The '{self.name}' component's `weights` setting: {err}") from err
        return get_bilm(self.model)  # type: ignore[return-value]

    @staticmethod
    def _check_fits(cfg: Dict, bilm: BiLM) -> None:
        mix = cfg["mix_weights"]
        if mix is not None and len(mix) != bilm.n_outputs:
            raise ValueError(f"elmo: mix_weights has {len(mix)} values but the biLM has {bilm.n_outputs} layers (token layer + {bilm.n_outputs - 1} LSTM layers)")

    def _set_bilm(self, bilm: BiLM, cfg: Optional[Dict] = None) -> None:
        """Install `bilm` (and the saved settings `cfg` that came with it): everything is checked first, so a
        refused copy leaves the component as it was."""
        new_cfg = {**self.cfg, **(cfg or {})}
        self._check_fits(new_cfg, bilm)
        self.cfg = new_cfg
        set_bilm(self.model, bilm)
        self._weights_arrived()

    def _weights_arrived(self) -> None:
        bilm = get_bilm(self.model)
        assert bilm is not None
        self._check_fits(self.cfg, bilm)
        self.cache.clear()
        self._tell_listeners()

    @property
    def sets_vector_hooks(self) -> bool:
        return bool(self.cfg["vector_hooks"])

    @property
    def width(self) -> int:
        return self._require_bilm().output_dim

    @property
    def n_layers(self) -> int:
        return self._require_bilm().n_outputs

    def initialize(self, get_examples: Optional[Callable[[], Iterable[Example]]] = None, *, nlp: Optional[Language] = None,
                   weights_loader: Optional[WeightsLoader] = None) -> None:
        """Load the weights: from `weights_loader` ([initialize.components.elmo.weights_loader] in a config),
        else from the `weights` setting, else keep those already loaded. Nothing is learned."""
        if weights_loader is not None:
            # As spacy-curated-transformers: the loader becomes the model's Thinc init.
            self.model.init = weights_loader
            self.model.initialize()
            self._weights_arrived()
        else:
            self._require_bilm()

    def update(self, examples: Iterable[Example], *, drop: float = 0.0, sgd=None, losses: Optional[Dict[str, float]] = None) -> Dict[str, float]:
        """The biLM is frozen: nothing to learn. Present so that spaCy's tools that update every pipe
        (nlp.update, spacy debug model) run over it; downstream models learn their own mix. spacy-transformers'
        TransformerListener nodes linked to this pipe get the batch's features here (trf_bridge.py)."""
        self.cache.resize(self.cfg["cache_size"])  # being trained: the training cache is on (see _serve)
        trf_bridge.feed_listeners(self, [eg.predicted for eg in examples])
        return {} if losses is None else losses

    # -- listeners: downstream ElmoListener nodes learn the biLM's width and layer count from us
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
        link_upstream(listener, self)

    def remove_listener(self, listener: Model, component_name: str) -> bool:
        models = self.listener_map.get(component_name, [])
        if listener in models:
            models.remove(listener)
            unlink_upstream(listener)
            if not models:
                del self.listener_map[component_name]
            return True
        return False

    def find_listeners(self, component) -> None:
        model = getattr(component, "model", None)
        if not isinstance(model, Model):
            return
        for node in model.walk():
            if (node.name == LISTENER_NAME and node.attrs.get("upstream_name") in ("*", self.name)) or trf_bridge.is_listener(node, self.name):
                self.add_listener(node, component.name)
        self._tell_listeners()

    def _tell_listeners(self) -> None:
        """A listener with width = null takes ours; one with a width set is checked at its initialize,
        naming both. spaCy links listeners before initialize and after from_disk, and the weights may
        arrive on either side of that, so both places tell them."""
        bilm = get_bilm(self.model)
        if bilm is None:
            return
        for node in self.listeners:
            node.attrs["upstream_width"] = bilm.output_dim
            node.attrs["upstream_n_layers"] = bilm.n_outputs
            if node.has_dim("nO") is None:  # declared, not set: width = null
                node.set_dim("nO", bilm.output_dim)

    # -- running
    def __call__(self, doc: Doc) -> Doc:
        self.set_annotations([doc], self.predict([doc]))
        return doc

    def annotate(self, docs: List[Doc]) -> None:
        """Run on docs a listener received unannotated (see layers/listener.py)."""
        self.set_annotations(docs, self.predict(docs))

    def pipe(self, stream: Iterable[Doc], *, batch_size: int = 128) -> Iterator[Doc]:
        for docs in minibatch(stream, size=batch_size):
            self.set_annotations(docs, self.predict(docs))
            yield from docs

    def _check_process(self) -> None:
        if self._pid != os.getpid():
            # A forked worker (nlp.pipe(n_process=N)): torch's inherited OpenMP pool can deadlock after
            # fork, and N workers should not each use every core. One thread per worker, as DataLoader does.
            self._pid = os.getpid()
            torch.set_num_threads(1)

    def predict(self, docs: Sequence[Doc]) -> List[numpy.ndarray]:
        """Per doc (L, len(doc), D) in the storage dtype. Spans from get_spans are cut from the docs, the
        same token sequence runs once (and once only across calls with the cache), batched by
        plan_batches; tokens in several overlapping spans get the average; tokens in no span stay zero."""
        bilm = self._require_bilm()
        L, D, dtype = bilm.n_outputs, bilm.output_dim, self.cfg["dtype"]
        # Per doc, the activations of its spans: (start, end, (L, end - start, D) in the storage dtype).
        pieces: List[List[Tuple[int, int, numpy.ndarray]]] = [[] for _ in docs]
        # Unique sequences still to run (repeats in a batch run once): key -> (span, [(doc, start, end)])
        todo: Dict[bytes, Tuple[Span, List[Tuple[int, int, int]]]] = {}
        for i, spans in enumerate(self.get_spans(list(docs))):
            for span in spans:
                if len(span) == 0:
                    continue
                key = ActivationCache.key([token.text for token in span])
                cached = self.cache.get(key) if key not in todo else None
                if cached is not None:
                    pieces[i].append((span.start, span.end, cached))
                else:
                    todo.setdefault(key, (span, []))[1].append((i, span.start, span.end))
        if todo:
            self._check_process()
            jobs = list(todo.items())
            ops = self.model.ops
            for batch in plan_batches([len(span) for _, (span, _) in jobs], self.cfg["token_budget"]):
                outputs = self.model.predict([jobs[j][1][0] for j in batch])
                for j, output in zip(batch, outputs):
                    key, (_, targets) = jobs[j]
                    layers = ops.to_numpy(output.astype(dtype))
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
            doc._.elmo_offsets = token_offsets(doc)  # what the rows belong to: reads check it (extensions.py)
            doc._.elmo_mix = {"weights": list(weights), "gamma": self.cfg["mix_gamma"]}
            if self.cfg["vector_hooks"]:
                set_vector_hooks(doc)
        trf_bridge.set_trf_data(docs)  # doc._.trf_data for TransformerListener, where spacy-transformers is in use

    # -- serialisation: the weights travel inside the pipeline directory, in their own format (bilm-tf's
    # layout, or an ELMoForManyLangs model's files)
    def to_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        save_bilm_dir(self._require_bilm(), path, remove_other_format=True)
        text = srsly.json_dumps(self.cfg, indent=2)
        atomic_write(path / CFG_FILE, lambda tmp: Path(tmp).write_text(text, encoding="utf8"))

    def from_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()) -> "ElmoComponent":
        """The pipeline's own copy: the `weights` setting (the training machine's directory) is not read."""
        path = Path(path)
        saved = self._read_saved_cfg(path / CFG_FILE, str(path / CFG_FILE)) if (path / CFG_FILE).exists() else {}
        self._set_bilm(load_weights_dir(path), saved)
        self._serve()
        return self

    def _serve(self) -> None:
        """A pipe restored from disk or bytes (spacy.load, a packaged pipeline, model-best) is served, not
        trained: cache_size is a training setting (epoch 2 onwards skips the biLM), and kept on in serving
        it would grow with every new document up to its cap. It comes back on when the pipe is trained
        again (update); cfg keeps the setting for that."""
        self.cache.resize(0)

    @staticmethod
    def _read_saved_cfg(path: Path, where: str) -> Dict:
        saved = read_saved_cfg(path)
        problems = mix_problems(saved.get("mix_weights"), saved.get("mix_gamma", 1.0))
        if problems:
            raise ElmoWeightsError(f"{where}: " + "; ".join(problems) + ". Fix the file or save the pipeline again.")
        return saved

    def to_bytes(self, *, exclude: Iterable[str] = tuple()) -> bytes:
        files = bilm_to_files(self._require_bilm())
        files[CFG_FILE] = srsly.json_dumps(self.cfg, indent=2).encode("utf8")
        return srsly.msgpack_dumps(files)

    def from_bytes(self, data: bytes, *, exclude: Iterable[str] = tuple()) -> "ElmoComponent":
        # The blob may come from anywhere (a shared pickle, a download): its keys are never used as file
        # names. Only the names to_bytes writes are accepted, and the files are written under our
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
        absent = missing_weight_files(files)
        wrong_type = [name for name in BYTES_FILES if name in files and not isinstance(files[name], bytes)]
        if absent or wrong_type:
            raise ValueError(
                "elmo.from_bytes: "
                + "; ".join(([f"missing {', '.join(absent)}"] if absent else []) + ([f"{', '.join(wrong_type)} not bytes"] if wrong_type else []))
                + ". Use bytes written by ElmoComponent.to_bytes."
            )
        saved: Dict = {}
        if CFG_FILE in files:
            with tempfile.TemporaryDirectory() as tmp:
                (Path(tmp) / CFG_FILE).write_bytes(files[CFG_FILE])
                saved = self._read_saved_cfg(Path(tmp) / CFG_FILE, "elmo.from_bytes: the serialised cfg")
        self._set_bilm(bilm_from_files(files), saved)
        self._serve()
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
    token_cache_size: int,
) -> ElmoComponent:
    component = ElmoComponent(
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
        token_cache_size=token_cache_size,
    )
    bind_pipeline(component, nlp)  # its listeners ask whether it is disabled or frozen there
    if vector_hooks:
        restore_vector_hooks_after_pipe(nlp)  # hooks do not come back from nlp.pipe(n_process=N) workers
    return component
