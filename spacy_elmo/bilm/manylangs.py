"""HIT-SCIR's ELMoForManyLangs model directories: read, check, run as a BiLM, write back.

A directory holds config.json (whose config_path names the model config), char.dic and word.dic (learned
vocabularies, "TOKEN<TAB>ID" lines) and two torch state dicts, token_embedder.pkl and encoder.pkl. The encoder
is AllenNLP's projected LSTM stack, the same arithmetic as ProjectedLSTM; the token embedder is a char CNN +
highway over the learned character vocabulary, concatenated after an optional word embedding, then projected.

What elmoformanylangs 0.0.4.post2 computes, quirks included, is reproduced here:
- words longer than max_characters_per_token - 2 characters (code points) are cut to that length, and the
  word vocabulary is looked up with the cut word;
- its batcher swaps the marks: a word's characters are framed as [<eow>, chars..., <bow>, <pad>...];
- <bos>/<eos> (and a token spelled "<bos>" or "<eos>" anywhere) are [<eow>, <bos>|<eos>, <bow>, <pad>...];
- a .dic line with a single field is the character U+3000 (its reader strips the line first), and lines
  are split the way str.splitlines() splits them.
The state dicts are read with torch.load(weights_only=True): tensors only, never arbitrary pickled objects.
"""
import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union, cast

import numpy
import torch
from torch import nn

from .atomic import atomic_write
from .bilm import BiLM
from .char_cnn import TokenEncoder, conv_max
from .highway import Highway
from .module_list import ModuleListOf
from .options import BiLMOptions, OptionsError
from .precision import char_encoder_dtype
from .weights import WeightFileError

PathLike = Union[str, Path]

CONFIG_FILE = "config.json"
CHAR_DIC = "char.dic"
WORD_DIC = "word.dic"
TOKEN_EMBEDDER_FILE = "token_embedder.pkl"
ENCODER_FILE = "encoder.pkl"
# save_manylangs writes the model config under this name and points config.json's config_path at it.
MODEL_CONFIG_FILE = "model_config.json"
MANYLANGS_FILES = (CONFIG_FILE, CHAR_DIC, WORD_DIC, TOKEN_EMBEDDER_FILE, ENCODER_FILE)
SAVED_FILES = (CONFIG_FILE, MODEL_CONFIG_FILE, CHAR_DIC, WORD_DIC, TOKEN_EMBEDDER_FILE, ENCODER_FILE)

# The published archives name a model config that ships with elmoformanylangs, not with the archive; both
# published names hold these settings.
_SAMPLE_CONFIG: Dict[str, Any] = {
    "encoder": {"name": "elmo", "projection_dim": 512, "cell_clip": 3, "proj_clip": 3, "dim": 4096, "n_layers": 2},
    "token_embedder": {
        "name": "cnn", "activation": "relu",
        "filters": [[1, 32], [2, 32], [3, 64], [4, 128], [5, 256], [6, 512], [7, 1024]],
        "n_highway": 2, "word_dim": 100, "char_dim": 50, "max_characters_per_token": 50,
    },
    "classifier": {"name": "sampled_softmax", "n_samples": 8192},
    "dropout": 0.1,
}
BUILTIN_CONFIGS = {"cnn_50_100_512_4096_sample.json": _SAMPLE_CONFIG, "cnn_0_100_512_4096_sample.json": _SAMPLE_CONFIG}

CHAR_SPECIALS = ("<bow>", "<eow>", "<oov>", "<pad>", "<bos>", "<eos>")
WORD_SPECIALS = ("<oov>", "<pad>")
BOUNDARY_WORDS = ("<bos>", "<eos>")
MAX_JSON_BYTES = 1 << 20
MAX_DIC_BYTES = 512 << 20
MAX_VOCAB = 20_000_000
# A state dict may be stored in float64 (twice our float32 bytes) plus the pickle's own bookkeeping.
PKL_SLACK_BYTES = 16 << 20


class ManyLangsError(WeightFileError):
    """An ELMoForManyLangs directory that cannot be used; the message names the file and the fix."""


@dataclass
class ManyLangsSpec:
    """Everything but the weights: the two configs as read, the vocabularies, and the biLM options they imply."""
    run_config: Dict[str, Any]
    model_config: Dict[str, Any]
    chars: Dict[str, int]
    words: Optional[Dict[str, int]]
    options: BiLMOptions = field(init=False)

    def __post_init__(self) -> None:
        self.options = _options(self.model_config)

    @property
    def word_dim(self) -> int:
        return int(self.model_config["token_embedder"]["word_dim"]) if self.words is not None else 0


# -- reading the directory
def _read_json(path: Path, what: str) -> Any:
    if not path.is_file():
        raise ManyLangsError(f"{path} not found: an ELMoForManyLangs model directory needs {what}.")
    if path.stat().st_size > MAX_JSON_BYTES:
        raise ManyLangsError(f"{path} is over {MAX_JSON_BYTES >> 20} MiB; {what} is a small JSON file. Is it the right file?")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise ManyLangsError(f"{path} is not valid UTF-8 JSON ({err}); it should be {what}.") from err


def _model_config_path(directory: Path, config_path: str) -> Optional[Path]:
    """Where config_path points, looked for only inside `directory`: as given when that stays inside, then
    its file name there. elmoformanylangs also reads absolute and ../ paths; a downloaded file may not
    choose what we read."""
    root = directory.resolve()
    for candidate in (directory / config_path, directory / Path(config_path).name):
        try:
            resolved = candidate.resolve()
        except (OSError, RuntimeError):
            continue
        if resolved.is_relative_to(root) and resolved.is_file():
            return resolved
    return None


def read_configs(directory: PathLike) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """(config.json, the model config it names). The model config is looked for in the directory, then among
    the configs elmoformanylangs ships (the published archives rely on those)."""
    directory = Path(directory)
    run_config = _read_json(directory / CONFIG_FILE, "config.json with a config_path")
    config_path = run_config.get("config_path") if isinstance(run_config, dict) else None
    if not isinstance(config_path, str) or not config_path:
        raise ManyLangsError(f"{directory / CONFIG_FILE} has no config_path naming the model config "
                             f"(e.g. \"config_path\": \"cnn_50_100_512_4096_sample.json\").")
    found = _model_config_path(directory, config_path)
    if found is not None:
        model_config = _read_json(found, "the model config")
    elif Path(config_path).name in BUILTIN_CONFIGS:
        model_config = copy.deepcopy(BUILTIN_CONFIGS[Path(config_path).name])
    else:
        raise ManyLangsError(
            f"{directory / CONFIG_FILE} names the model config {config_path!r}, which is not a file in {directory} "
            f"and not one of the configs elmoformanylangs ships ({', '.join(BUILTIN_CONFIGS)}). Copy the model's "
            f"config JSON into {directory} and set config_path to its file name.")
    if not isinstance(model_config, dict):
        raise ManyLangsError(f"The model config {config_path!r} of {directory} must be a JSON object.")
    return run_config, model_config


def _options(config: Dict[str, Any]) -> BiLMOptions:
    """The biLM options of a model config, refused when this package cannot run it as elmoformanylangs does."""
    try:
        encoder, embedder = config["encoder"], config["token_embedder"]
        if str(encoder["name"]).lower() != "elmo":
            raise OptionsError(f"encoder.name is {encoder['name']!r}; only the 'elmo' encoder (the published models') is supported")
        if str(embedder["name"]).lower() != "cnn":
            raise OptionsError(f"token_embedder.name is {embedder['name']!r}; only the 'cnn' token embedder (the published models') is supported")
        if int(embedder["char_dim"]) <= 0:
            raise OptionsError("token_embedder.char_dim is 0; models without a character encoder are not supported")
        word_dim = int(embedder["word_dim"])
        if not 0 <= word_dim <= 4096:
            raise OptionsError(f"token_embedder.word_dim is {word_dim}; it must be between 0 and 4096")
        return BiLMOptions(
            lstm_dim=int(encoder["dim"]), projection_dim=int(encoder["projection_dim"]), n_layers=int(encoder["n_layers"]),
            cell_clip=float(encoder.get("cell_clip") or 0.0), proj_clip=float(encoder.get("proj_clip") or 0.0),
            use_skip_connections=True, char_dim=int(embedder["char_dim"]), filters=list(embedder["filters"]),
            n_highway=int(embedder["n_highway"]), activation=str(embedder["activation"]),
            max_characters_per_token=int(embedder["max_characters_per_token"]),
            extra={"format": "ELMoForManyLangs", "word_dim": word_dim},
        )
    except OptionsError as err:
        raise ManyLangsError(f"ELMoForManyLangs model config: {err}.") from err
    except (KeyError, TypeError, ValueError) as err:
        problem = f"missing setting {err.args[0]!r}" if isinstance(err, KeyError) else f"malformed setting ({err})"
        raise ManyLangsError(f"ELMoForManyLangs model config: {problem}; it needs encoder {{name, dim, projection_dim, "
                             "n_layers, cell_clip, proj_clip} and token_embedder {name, activation, filters, n_highway, "
                             "word_dim, char_dim, max_characters_per_token}.") from err


def read_lexicon(path: Path, specials: Sequence[str]) -> Dict[str, int]:
    """A .dic file as elmoformanylangs reads it: per line, strip, split on TAB, a lone field is U+3000."""
    if not path.is_file():
        raise ManyLangsError(f"{path} not found: the model's config asks for this vocabulary (TOKEN<TAB>ID lines).")
    if path.stat().st_size > MAX_DIC_BYTES:
        raise ManyLangsError(f"{path} is over {MAX_DIC_BYTES >> 20} MiB; a vocabulary of TOKEN<TAB>ID lines is far smaller.")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise ManyLangsError(f"{path} is not UTF-8 text ({err}); it must hold TOKEN<TAB>ID lines.") from err
    lexicon: Dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.strip().split("\t")
        if len(fields) == 1:
            fields.insert(0, "\u3000")
        try:
            if len(fields) != 2:
                raise ValueError
            token, index = fields[0], int(fields[1])
        except ValueError:
            raise ManyLangsError(f"{path} line {number}: {line[:60]!r} is not TOKEN<TAB>ID (an integer id).") from None
        if not 0 <= index < MAX_VOCAB:
            raise ManyLangsError(f"{path} line {number}: id {index} is out of range (0 to {MAX_VOCAB - 1}).")
        lexicon[token] = index
    absent = [s for s in specials if s not in lexicon]
    if absent:
        raise ManyLangsError(f"{path} has no {', '.join(absent)}; elmoformanylangs needs {', '.join(specials)} in it.")
    return lexicon


def read_spec(directory: PathLike) -> ManyLangsSpec:
    directory = Path(directory)
    run_config, model_config = read_configs(directory)
    options = _options(model_config)
    chars = read_lexicon(directory / CHAR_DIC, CHAR_SPECIALS)
    words = read_lexicon(directory / WORD_DIC, WORD_SPECIALS) if int(options.extra["word_dim"]) > 0 else None
    return ManyLangsSpec(run_config, model_config, chars, words)


# -- the state dicts, in elmoformanylangs' names and shapes
def _embedder_shapes(spec: ManyLangsSpec) -> Dict[str, Tuple[int, ...]]:
    o = spec.options
    shapes: Dict[str, Tuple[int, ...]] = {}
    if spec.words is not None:
        shapes["word_emb_layer.embedding.weight"] = (len(spec.words), spec.word_dim)
    shapes["char_emb_layer.embedding.weight"] = (len(spec.chars), o.char_dim)
    for i, (width, n) in enumerate(o.filters):
        shapes[f"convolutions.{i}.weight"] = (n, o.char_dim, width)
        shapes[f"convolutions.{i}.bias"] = (n,)
    F = o.n_filters
    for k in range(o.n_highway):
        shapes[f"highways._layers.{k}.weight"] = (2 * F, F)
        shapes[f"highways._layers.{k}.bias"] = (2 * F,)
    shapes["projection.weight"] = (o.projection_dim, spec.word_dim + F)
    shapes["projection.bias"] = (o.projection_dim,)
    return shapes


def _encoder_shapes(options: BiLMOptions) -> Dict[str, Tuple[int, ...]]:
    P, C = options.projection_dim, options.lstm_dim
    shapes: Dict[str, Tuple[int, ...]] = {}
    for i in range(options.n_layers):
        for direction in ("forward", "backward"):
            prefix = f"{direction}_layer_{i}"
            shapes[f"{prefix}.input_linearity.weight"] = (4 * C, P)
            shapes[f"{prefix}.state_linearity.weight"] = (4 * C, P)
            shapes[f"{prefix}.state_linearity.bias"] = (4 * C,)
            shapes[f"{prefix}.state_projection.weight"] = (P, C)
    return shapes


def _load_state(path: Path, shapes: Dict[str, Tuple[int, ...]]) -> Dict[str, torch.Tensor]:
    """A state dict of exactly `shapes`, float32, finite. Tensors only: weights_only refuses any other object."""
    if not path.is_file():
        raise ManyLangsError(f"{path} not found: an ELMoForManyLangs model directory needs {TOKEN_EMBEDDER_FILE} and {ENCODER_FILE}.")
    limit = 2 * 4 * sum(int(numpy.prod(s)) for s in shapes.values()) + PKL_SLACK_BYTES
    if path.stat().st_size > limit:
        raise ManyLangsError(f"{path} is {path.stat().st_size:,} bytes, more than the model config and vocabularies call for "
                             f"(at most {limit:,}); does the directory's config belong to these weights?")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # unpickling raises many unrelated types for damaged or hostile files
        raise ManyLangsError(f"{path} is not a readable torch state dict of tensors ({type(err).__name__}: {str(err)[:200]}).") from err
    if not isinstance(state, Mapping):
        raise ManyLangsError(f"{path} holds a {type(state).__name__}, not a state dict of tensors.")
    missing = [k for k in shapes if k not in state]
    unexpected = [str(k) for k in state if k not in shapes]
    if missing or unexpected:
        raise ManyLangsError(f"{path}: " + "; ".join(
            ([f"missing {', '.join(missing[:5])}"] if missing else []) + ([f"unexpected {', '.join(unexpected[:5])}"] if unexpected else []))
            + ". Do config.json's model config and the .dic files belong to these weights?")
    out = {}
    for key, shape in shapes.items():
        value = state[key]
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            raise ManyLangsError(f"{path}: '{key}' is not a floating-point tensor.")
        if tuple(value.shape) != shape:
            raise ManyLangsError(f"{path}: '{key}' has shape {tuple(value.shape)}, the model config and vocabularies call for {shape}. "
                                 "Use the config.json, char.dic and word.dic that came with these weights.")
        value = value.detach().to(torch.float32)
        if not torch.isfinite(value).all():
            raise ManyLangsError(f"{path}: '{key}' contains NaN or inf values; the file is corrupt.")
        out[key] = value
    return out


def _check_ids(lexicon: Dict[str, int], path: Path) -> None:
    """Ids index the embedding, which has one row per distinct entry (elmoformanylangs sizes it so)."""
    if lexicon and max(lexicon.values()) >= len(lexicon):
        raise ManyLangsError(f"{path}: ids go up to {max(lexicon.values())} but there are {len(lexicon)} entries; "
                             "each id must be below the number of entries.")


# -- the model
class ManyLangsTokenEmbedder(nn.Module):
    """Token vectors from rows [word id + 1, char ids + 1 ...]: id 0 means "no token" (an all-zero row)."""

    def __init__(self, spec: ManyLangsSpec) -> None:
        super().__init__()
        o = self.options = spec.options
        self.word_embed = nn.Embedding(len(spec.words) + 1, spec.word_dim, padding_idx=0) if spec.words is not None else None
        self.char_embed = nn.Embedding(len(spec.chars) + 1, o.char_dim, padding_idx=0)
        self.convs = ModuleListOf(nn.Conv1d(o.char_dim, n, kernel_size=width) for width, n in o.filters)
        self.activation = torch.tanh if o.activation == "tanh" else torch.relu
        self.highway = Highway(o.n_filters, o.n_highway)
        self.projection = nn.Linear(spec.word_dim + o.n_filters, o.projection_dim)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """(..., 1 + max_chars) int64 -> (..., projection_dim)."""
        lead = ids.shape[:-1]
        flat = ids.reshape(-1, ids.shape[-1])
        chars = self.char_embed(flat[:, 1:])
        x = self.highway(torch.cat([self.activation(conv_max(chars, conv)) for conv in self.convs], dim=-1))
        if self.word_embed is not None:
            x = torch.cat([self.word_embed(flat[:, 0]), x], dim=-1)
        return self.projection(x).reshape(*lead, -1)


class ManyLangsBiLM(BiLM):
    """The BiLM with ELMoForManyLangs' token embedder and batching: same layers as its
    Embedder.sents2elmo(..., output_layer=-2). Token rows are [word id, char ids] (token_ids)."""

    # ELMoForManyLangs' token embedder in the place of the bilm-tf char CNN: the same role (token rows ->
    # token vectors), another module, so not the parent's type.
    char_cnn: ManyLangsTokenEmbedder  # type: ignore[assignment]

    def __init__(self, spec: ManyLangsSpec, stateful: bool = False, char_cache_size: int = 0) -> None:
        # The parent's bilm-tf char CNN is replaced below: build it at its smallest.
        placeholder = copy.copy(spec.options)
        placeholder.filters, placeholder.n_highway, placeholder.char_dim = [(1, 1)], 0, 1
        super().__init__(placeholder, stateful=stateful, char_cache_size=char_cache_size)
        self.options = spec.options
        self.spec = spec
        self.char_cnn = ManyLangsTokenEmbedder(spec)
        for layer in [*self.forward_layers, *self.backward_layers]:
            layer.forget_offset.zero_()  # AllenNLP's cell has no run-time forget bias: the stored bias is all of it
        self._rows: Dict[str, numpy.ndarray] = {}
        self.bos_ids = torch.tensor(self._token_row("<bos>"))
        self.eos_ids = torch.tensor(self._token_row("<eos>"))

    def _token_row(self, word: str) -> numpy.ndarray:
        row = self._rows.get(word)
        if row is not None:
            return row
        chars, K = self.spec.chars, self.options.max_characters_per_token
        text = word[: K - 2] if len(word) + 2 > K else word
        ids = numpy.full(1 + K, chars["<pad>"] + 1, dtype=numpy.int64)
        ids[0] = 0 if self.spec.words is None else self.spec.words.get(text, self.spec.words["<oov>"]) + 1
        # The marks swapped, as elmoformanylangs' batcher writes them.
        ids[1] = chars["<eow>"] + 1
        if text in BOUNDARY_WORDS:
            ids[2], ids[3] = chars[text] + 1, chars["<bow>"] + 1
        else:
            oov = chars["<oov>"]
            ids[2 : 2 + len(text)] = [chars.get(c, oov) + 1 for c in text]
            ids[2 + len(text)] = chars["<bow>"] + 1
        if len(self._rows) >= 200_000:
            self._rows.clear()
        row = self._rows[word] = ids
        row.flags.writeable = False
        return row

    def token_ids(self, sentences: Sequence[Sequence[str]]) -> numpy.ndarray:
        """Token lists -> (B, T, 1 + max_chars) int64, zero rows past each sentence's end."""
        width = max((len(s) for s in sentences), default=0)
        out = numpy.zeros((len(sentences), width, 1 + self.options.max_characters_per_token), dtype=numpy.int64)
        for i, sentence in enumerate(sentences):
            for j, word in enumerate(sentence):
                out[i, j] = self._token_row(word)
        return out

    def _inference_char_cnn(self, device: torch.device) -> TokenEncoder:
        dtype = char_encoder_dtype(self.precision, device)
        if dtype is None:
            return self.char_cnn
        cached = self.__dict__.get("_low_precision_char_cnn")
        if cached is None or cached[0] != (device, dtype):
            copy_ = copy.deepcopy(self.char_cnn).to(device=device, dtype=dtype).eval().requires_grad_(False)
            cached = self.__dict__["_low_precision_char_cnn"] = ((device, dtype), copy_)
        return cached[1]


def _reorder(gates: torch.Tensor, C: int, order: Sequence[int]) -> torch.Tensor:
    return torch.cat([gates[k * C : (k + 1) * C] for k in order])


# AllenNLP's gate blocks are [i, f, g, o]; ProjectedLSTM's are [i, f, o, g]: the same swap both ways.
GATE_ORDER = (0, 1, 3, 2)


def load_manylangs(directory: PathLike, stateful: bool = False, char_cache_size: int = 0) -> ManyLangsBiLM:
    """The BiLM of an ELMoForManyLangs model directory, every file checked before its weights are used."""
    directory = Path(directory)
    spec = read_spec(directory)
    _check_ids(spec.chars, directory / CHAR_DIC)
    if spec.words is not None:
        _check_ids(spec.words, directory / WORD_DIC)
    embedder = _load_state(directory / TOKEN_EMBEDDER_FILE, _embedder_shapes(spec))
    encoder = _load_state(directory / ENCODER_FILE, _encoder_shapes(spec.options))
    bilm = ManyLangsBiLM(spec, stateful=stateful, char_cache_size=char_cache_size)
    t, F, C = bilm.char_cnn, spec.options.n_filters, spec.options.lstm_dim
    with torch.no_grad():
        if t.word_embed is not None:
            t.word_embed.weight[1:] = embedder["word_emb_layer.embedding.weight"]
        t.char_embed.weight[1:] = embedder["char_emb_layer.embedding.weight"]
        for i, conv in enumerate(t.convs):
            conv.weight.copy_(embedder[f"convolutions.{i}.weight"])
            cast(torch.Tensor, conv.bias).copy_(embedder[f"convolutions.{i}.bias"])  # built with a bias
        for k, (carry, transform) in enumerate(zip(t.highway.carry, t.highway.transform)):
            weight, bias = embedder[f"highways._layers.{k}.weight"], embedder[f"highways._layers.{k}.bias"]
            transform.weight.copy_(weight[:F])
            transform.bias.copy_(bias[:F])
            # AllenNLP's gate g carries the input; ours carries with 1 - g: sigmoid(-z) = 1 - sigmoid(z).
            carry.weight.copy_(-weight[F:])
            carry.bias.copy_(-bias[F:])
        t.projection.weight.copy_(embedder["projection.weight"])
        t.projection.bias.copy_(embedder["projection.bias"])
        for direction, layers in (("forward", bilm.forward_layers), ("backward", bilm.backward_layers)):
            for i, layer in enumerate(layers):
                prefix = f"{direction}_layer_{i}"
                layer.input_weight.copy_(_reorder(encoder[f"{prefix}.input_linearity.weight"], C, GATE_ORDER).T)
                layer.state_weight.copy_(_reorder(encoder[f"{prefix}.state_linearity.weight"], C, GATE_ORDER).T)
                layer.bias.copy_(_reorder(encoder[f"{prefix}.state_linearity.bias"], C, GATE_ORDER))
                layer.proj_weight.copy_(encoder[f"{prefix}.state_projection.weight"].T)
    return bilm.eval()


def manylangs_state_dicts(bilm: ManyLangsBiLM) -> Tuple[Dict[str, torch.Tensor], Dict[str, torch.Tensor]]:
    """(token_embedder.pkl, encoder.pkl) state dicts in elmoformanylangs' names and layout: the inverse of loading."""
    t, F, C = bilm.char_cnn, bilm.options.n_filters, bilm.options.lstm_dim
    embedder: Dict[str, torch.Tensor] = {}
    if t.word_embed is not None:
        embedder["word_emb_layer.embedding.weight"] = t.word_embed.weight[1:]
    embedder["char_emb_layer.embedding.weight"] = t.char_embed.weight[1:]
    for i, conv in enumerate(t.convs):
        embedder[f"convolutions.{i}.weight"], embedder[f"convolutions.{i}.bias"] = conv.weight, cast(torch.Tensor, conv.bias)
    for k, (carry, transform) in enumerate(zip(t.highway.carry, t.highway.transform)):
        embedder[f"highways._layers.{k}.weight"] = torch.cat([transform.weight, -carry.weight])
        embedder[f"highways._layers.{k}.bias"] = torch.cat([transform.bias, -carry.bias])
    embedder["projection.weight"], embedder["projection.bias"] = t.projection.weight, t.projection.bias
    encoder: Dict[str, torch.Tensor] = {}
    for i in range(bilm.options.n_layers):
        for direction, layers in (("forward", bilm.forward_layers), ("backward", bilm.backward_layers)):
            layer, prefix = layers[i], f"{direction}_layer_{i}"
            encoder[f"{prefix}.input_linearity.weight"] = _reorder(layer.input_weight.T, C, GATE_ORDER)
            encoder[f"{prefix}.state_linearity.weight"] = _reorder(layer.state_weight.T, C, GATE_ORDER)
            encoder[f"{prefix}.state_linearity.bias"] = _reorder(layer.bias, C, GATE_ORDER)
            encoder[f"{prefix}.state_projection.weight"] = layer.proj_weight.T
    clean = lambda state: {k: v.detach().float().cpu().contiguous().clone() for k, v in state.items()}  # noqa: E731
    return clean(embedder), clean(encoder)


def _dic_text(lexicon: Dict[str, int]) -> str:
    # U+3000 is written as itself: the reader strips it and reads the lone id back as U+3000.
    return "".join(f"{token}\t{index}\n" for token, index in sorted(lexicon.items(), key=lambda item: item[1]))


def _text_writer(text: str) -> Callable[[str], object]:
    return lambda tmp: Path(tmp).write_text(text, encoding="utf-8")


def _state_writer(state: Dict[str, torch.Tensor]) -> Callable[[str], object]:
    return lambda tmp: torch.save(state, tmp)


def save_manylangs(bilm: ManyLangsBiLM, directory: PathLike) -> Tuple[str, ...]:
    """Write the model in ELMoForManyLangs' own layout (which elmoformanylangs.Embedder also reads), each
    file replaced atomically; the model config goes to MODEL_CONFIG_FILE. Returns the names written."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    spec = bilm.spec
    run_config = dict(spec.run_config, config_path=MODEL_CONFIG_FILE)
    embedder, encoder = manylangs_state_dicts(bilm)
    texts = {MODEL_CONFIG_FILE: json.dumps(spec.model_config, indent=2, ensure_ascii=False),
             CHAR_DIC: _dic_text(spec.chars)}
    if spec.words is not None:
        texts[WORD_DIC] = _dic_text(spec.words)
    for name, text in texts.items():
        atomic_write(directory / name, _text_writer(text))
    for name, state in ((TOKEN_EMBEDDER_FILE, embedder), (ENCODER_FILE, encoder)):
        atomic_write(directory / name, _state_writer(state))
    # config.json last: a directory is recognised by it, so an interrupted save is not mistaken for a model.
    text = json.dumps(run_config, indent=2, ensure_ascii=False)
    atomic_write(directory / CONFIG_FILE, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    return (*texts, TOKEN_EMBEDDER_FILE, ENCODER_FILE, CONFIG_FILE)


__all__ = ["ManyLangsBiLM", "ManyLangsError", "ManyLangsSpec", "ManyLangsTokenEmbedder", "load_manylangs", "save_manylangs",
           "read_spec", "read_lexicon", "read_configs", "MANYLANGS_FILES", "SAVED_FILES", "BUILTIN_CONFIGS"]
