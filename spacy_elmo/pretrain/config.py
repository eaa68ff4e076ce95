"""Pretraining settings in spaCy's config format (confection/thinc Config), with dotted CLI overrides.

A user's config is merged over DEFAULT_CONFIG, so it only needs the settings it changes; the merged
config is written to DIR/config.cfg so a run documents itself. check_config validates it once (every key
known, of the default's type, in range) and Settings.from_config turns it into typed dataclasses, so the
training loop reads `settings.training.max_steps` and never casts or looks up a string key itself."""
import dataclasses
import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Type, TypeVar, Union

from confection import Config

from ..bilm.options import BiLMOptions, OptionsError

DEFAULT_CONFIG = """
[paths]
train = null
dev = null
vocab = null
# a biLM to continue training (domain adaptation): a folder with bilm-tf's options.json + weights.hdf5
# (published weights, or an earlier run's output). Its options.json sets every [model] setting but dropout;
# the vocabulary is built from paths.train and the softmax is new (see softmax.reuse). Also --init-from DIR.
init_from = null

[corpus]
# auto | lines (bilm-tf: one whitespace-tokenised sentence per line) | text | jsonl | spacy
format = "auto"
# longer sentences are cut into pieces of this many tokens (0: never)
max_length = 100
# pipeline that tokenises and sentence-splits text/jsonl input ("blank:xx" = spacy.blank + sentencizer)
spacy_model = "blank:en"
# sentences shuffled and length-sorted together when batching
buffer_size = 20000
# held-out sentences evaluated (0: all of paths.dev)
dev_max_sentences = 2000

[vocab]
# LM target vocabulary: top max_size tokens of the training corpus incl. <S> </S> <UNK> (0: all)
max_size = 50000
min_count = 1

[model]
lstm_dim = 4096
projection_dim = 512
n_layers = 2
cell_clip = 3.0
proj_clip = 3.0
use_skip_connections = true
char_dim = 16
filters = [[1, 32], [2, 32], [3, 64], [4, 128], [5, 256], [6, 512], [7, 1024]]
n_highway = 2
activation = "relu"
max_characters_per_token = 50
dropout = 0.1

[softmax]
# full | sampled | adaptive; one softmax shared by the forward and backward LM (as bilm-tf)
type = "sampled"
n_samples = 8192
cutoffs = []
div_value = 4.0
# with paths.init_from: rows of tokens that are also in DIR/vocab.txt start from DIR's softmax/W and
# softmax/b when weights.hdf5 holds them (an earlier full or sampled run of this tool; published files
# have none); every other row starts fresh
reuse = true

[training]
seed = 0
# stop at whichever limit comes first; 0 disables a limit. max_steps, max_tokens (training tokens seen,
# summed over processes) and max_epochs give the same model on any machine (the data order is seeded);
# max_seconds (wall clock, evaluations included) gives a weaker model on a slower or busier machine
max_steps = 0
max_tokens = 0
max_epochs = 10
max_seconds = 0
# padded tokens per batch and process, <S> and </S> included
batch_tokens = 4096
max_batch_size = 0
# adagrad (bilm-tf: lr 0.2, initial_accumulator_value 1.0) | adam
optimizer = "adagrad"
learning_rate = 0.2
initial_accumulator_value = 1.0
# the rate of each step (spacy_elmo/pretrain/schedule.py): constant, or a linear or cosine decay from
# learning_rate to final_lr_fraction of it at the end of the budget (needs max_steps or max_tokens), after a
# linear warm-up over the first warmup_steps (0: none)
lr_schedule = "constant"
warmup_steps = 0
final_lr_fraction = 0.0
grad_clip = 10.0
# fp32 | bf16 | fp16 (autocast; fp16 uses a gradient scaler on CUDA) | auto (bf16 where the device runs it
# natively: a CPU with AVX512_BF16/AMX or a GPU of compute capability 8.0+; else fp32)
precision = "fp32"
checkpoint_every = 500
eval_every = 500
# also evaluate the untrained model (step 0), the start of the dev curve
eval_at_start = true
log_every = 20
# torch intra-op threads per process (0: torch's default)
threads = 0
# torch's deterministic algorithms on CPU: the same command, data, machine and threads train the same biLM bit for
# bit (without them two threads in fp32 do not). Ignored on a GPU.
deterministic = true
# which weights are exported: "best" (the dev evaluation with the lowest perplexity; the last step's when
# there is no dev set) or "last" (the weights when training stopped)
export = "best"
# the first N steps train the softmax only, the biLM frozen (a warm-up for a new softmax over a biLM from
# paths.init_from). N >= the steps run: the exported biLM is bit-equal to the one it started from
freeze_bilm_steps = 0
"""


class ConfigError(ValueError):
    pass


def load_config(path: Optional[Union[str, Path]] = None, overrides: Optional[Dict[str, Any]] = None,
                on_gpu: Optional[bool] = None) -> Config:
    """DEFAULT_CONFIG <- the file at path <- overrides ({"training.max_steps": 100, ...}). With on_gpu given, a
    config that sets no architecture (no [model] key but dropout, no paths.init_from) gets the one for the
    device: the original ELMo's (DEFAULT_CONFIG) on a GPU, CPU_MODEL on a CPU."""
    if on_gpu is False and not sets_architecture(path, overrides):
        overrides = {**{f"model.{key}": value for key, value in CPU_MODEL.items()}, **(overrides or {})}
    config = Config().from_str(DEFAULT_CONFIG)
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"Config file not found: {path}")
        try:
            config = config.merge(Config().from_disk(path, interpolate=False))
        except UnicodeDecodeError as err:
            raise ConfigError(f"Config file {path} is not UTF-8 text ({err.reason} at byte {err.start}).") from err
        except ValueError as err:  # confection's ConfigValidationError and configparser's errors are ValueErrors
            raise ConfigError(f"Config file {path} cannot be parsed: {_one_line(err)}. Fix it in spaCy's config "
                              "format ([section] headers, then one key = value per line).") from err
    overrides = dict(overrides or {})
    for key in overrides:
        section, _, name = key.partition(".")
        if section not in config or (name and "." not in name and name not in config[section]):
            raise ConfigError(f"Unknown config setting '{key}'. Known sections: {', '.join(config.keys())}.")
    try:
        config = Config().from_str(config.to_str(), overrides=overrides).interpolate()
    except ValueError as err:
        raise ConfigError(f"The settings of {path or 'the default config'} cannot be combined: {_one_line(err)}") from err
    where = str(path) if path is not None else "the default config"
    check_config(config, where=where + (" with the command-line overrides" if overrides else ""))
    return config


# The architecture of a run whose config sets none, on a CPU: configs/pretrain_small.cfg's (2.7M parameters in the
# biLM). DEFAULT_CONFIG's, the original ELMo's (93.6M), takes tens of seconds a step on a CPU.
CPU_MODEL: Dict[str, Any] = {
    "lstm_dim": 512, "projection_dim": 128, "n_layers": 2, "cell_clip": 3.0, "proj_clip": 3.0,
    "use_skip_connections": True, "char_dim": 16, "filters": [[1, 32], [2, 32], [3, 64], [4, 128], [5, 128]],
    "n_highway": 1, "activation": "relu", "max_characters_per_token": 50,
}


def sets_architecture(path: Optional[Union[str, Path]], overrides: Optional[Dict[str, Any]]) -> bool:
    """Whether the config file or the overrides choose the biLM's architecture: a [model] key other than dropout,
    or paths.init_from (whose options.json sets it)."""
    overrides = dict(overrides or {})
    keys = set(overrides)
    if path is not None and Path(path).is_file():
        try:
            own = Config().from_disk(path, interpolate=False)
        except (ValueError, UnicodeDecodeError):
            return True  # load_config reports what is wrong with the file
        keys |= {f"{section}.{key}" for section, values in own.items() for key in values}
        if own.get("paths", {}).get("init_from"):
            return True
    return bool(overrides.get("paths.init_from")) or any(
        key.startswith("model.") and key != "model.dropout" for key in keys)


def _one_line(err: Exception) -> str:
    """confection's errors span several lines with a generic title; the lines that say what is wrong, joined."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    generic = ("Config validation error", "Make sure the sections and values are formatted correctly.")
    return " ".join(line for line in lines if line not in generic) or type(err).__name__


# training.lr_schedule: the learning rate over the budget (schedule.py)
SCHEDULES = ("constant", "linear", "cosine")

# Allowed values and lower bounds, checked once when the config is loaded: a wrong value is an error
# naming the setting before anything is written to --output, not a traceback (or a silent no-op) later.
CHOICES = {
    "corpus.format": ("auto", "lines", "text", "jsonl", "spacy"),
    "softmax.type": ("full", "sampled", "adaptive"),
    "training.optimizer": ("adagrad", "adam"),
    "training.lr_schedule": SCHEDULES,
    "training.precision": ("auto", "fp32", "bf16", "fp16"),
    "model.activation": ("relu", "tanh"),
    "training.export": ("best", "last"),
}
AT_LEAST_ONE = {"training.batch_tokens", "corpus.buffer_size", "softmax.n_samples", "vocab.min_count"}
ANY_NUMBER = {"training.max_seconds"}  # an int default that may be given as a float
ANY_SIGN = {"training.seed"}
# At least one must be non-zero, or a run would never stop.
STOP_LIMITS = ("training.max_steps", "training.max_tokens", "training.max_epochs", "training.max_seconds")


def _expected_kind(key: str, default: Any) -> str:
    if default is None:
        return "path"
    if isinstance(default, bool):
        return "bool"
    if isinstance(default, int) and key not in ANY_NUMBER:
        return "int"
    if isinstance(default, (int, float)):
        return "number"
    if isinstance(default, str):
        return "str"
    return "list"


def _kind_ok(kind: str, value: Any) -> bool:
    if kind == "path":
        return value is None or isinstance(value, str)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value  # not NaN
    if kind == "str":
        return isinstance(value, str)
    return isinstance(value, list)


def check_config(config: Config, where: str = "the config") -> None:
    """Every setting known, of the default's type, in range; the model settings a valid biLM."""
    defaults = flat(Config().from_str(DEFAULT_CONFIG))
    problems = []
    for key, value in flat(config).items():
        if key not in defaults:
            close = difflib.get_close_matches(key, list(defaults), n=1)
            problems.append(f"unknown setting '{key}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
            continue
        kind = _expected_kind(key, defaults[key])
        if not _kind_ok(kind, value):
            wanted = {"path": "a path or null", "bool": "true or false", "int": "an integer", "number": "a number",
                      "str": "a string", "list": "a list"}[kind]
            problems.append(f"{key} must be {wanted}, not {value!r}")
        elif key in CHOICES and str(value).lower() not in CHOICES[key]:
            problems.append(f"{key} is {value!r}; use one of {', '.join(CHOICES[key])}")
        elif kind in ("int", "number") and key not in ANY_SIGN and not key.startswith("model."):
            low = 1 if key in AT_LEAST_ONE else 0
            if value < low:
                problems.append(f"{key} is {value}; it must be at least {low}" + ("" if low else " (0 disables it where that is allowed)"))
    for section in config:
        if not any(k.startswith(section + ".") for k in defaults):
            problems.append(f"unknown section [{section}]; known: {', '.join(sorted({k.split('.')[0] for k in defaults}))}")
    training = config.get("training", {})
    if not problems and not any(training.get(k.split(".")[1]) for k in STOP_LIMITS):
        problems.append(f"set at least one of {', '.join(STOP_LIMITS)} (all are 0)")
    if not problems and str(training.get("lr_schedule", "constant")).lower() != "constant" \
            and not (training.get("max_steps") or training.get("max_tokens")):
        problems.append(f"training.lr_schedule = {training['lr_schedule']!r} decays over the budget: set training.max_steps or "
                        "training.max_tokens, or use lr_schedule = \"constant\" for a run bounded by epochs or the clock")
    if not problems and not 0.0 <= training.get("final_lr_fraction", 0.0) <= 1.0:
        problems.append(f"training.final_lr_fraction is {training['final_lr_fraction']}; it must be between 0 and 1")
    if not problems:
        problems.extend(_model_problems(config))
    if not problems:
        try:
            bilm_options(config)
        except (OptionsError, TypeError, ValueError) as err:
            problems.append(f"[model]: {err}")
    if problems:
        raise ConfigError(f"Invalid pretraining settings in {where}: " + "; ".join(problems) + ".")


def _model_problems(config: Config) -> List[str]:
    """What BiLMOptions does not check: the training-only settings of [model] and [softmax]."""
    problems = []
    dropout = config["model"]["dropout"]
    if not 0.0 <= dropout < 1.0:
        problems.append(f"model.dropout is {dropout}; it must be at least 0 and below 1 (0: no dropout)")
    softmax = config["softmax"]
    if not softmax["div_value"] > 0:
        problems.append(f"softmax.div_value is {softmax['div_value']}; it must be above 0")
    cutoffs = softmax["cutoffs"]
    if not all(isinstance(c, int) and not isinstance(c, bool) and c >= 1 for c in cutoffs) \
            or list(cutoffs) != sorted(set(cutoffs)):
        problems.append(f"softmax.cutoffs is {cutoffs!r}; it must be increasing whole numbers of at least 1 "
                        "(or [] for the defaults)")
    return problems


def bilm_options(config: Config) -> BiLMOptions:
    m = config["model"]
    return BiLMOptions(
        lstm_dim=int(m["lstm_dim"]),
        projection_dim=int(m["projection_dim"]),
        n_layers=int(m["n_layers"]),
        cell_clip=float(m["cell_clip"]),
        proj_clip=float(m["proj_clip"]),
        use_skip_connections=bool(m["use_skip_connections"]),
        char_dim=int(m["char_dim"]),
        filters=[tuple(f) for f in m["filters"]],
        n_highway=int(m["n_highway"]),
        activation=str(m["activation"]),
        max_characters_per_token=int(m["max_characters_per_token"]),
    )


# ---- typed settings ---------------------------------------------------------------------------------
# One frozen dataclass per config section, its fields exactly the section's keys in DEFAULT_CONFIG
# (tests/robustness/test_pretrain_settings.py checks they agree). check_config has already refused unknown
# keys, wrong types and out-of-range values, so building them only normalises: numbers that may be written
# as integers become floats, choices lower case, filters tuples.
@dataclass(frozen=True)
class PathSettings:
    train: Optional[str]
    dev: Optional[str]
    vocab: Optional[str]
    init_from: Optional[str]


@dataclass(frozen=True)
class CorpusSettings:
    format: str
    max_length: int
    spacy_model: str
    buffer_size: int
    dev_max_sentences: int


@dataclass(frozen=True)
class VocabSettings:
    max_size: int
    min_count: int


@dataclass(frozen=True)
class ModelSettings:
    lstm_dim: int
    projection_dim: int
    n_layers: int
    cell_clip: float
    proj_clip: float
    use_skip_connections: bool
    char_dim: int
    filters: Tuple[Tuple[int, int], ...]
    n_highway: int
    activation: str
    max_characters_per_token: int
    dropout: float

    def bilm_options(self) -> BiLMOptions:
        """A fresh BiLMOptions (mutable: the run adds training keys to its extra)."""
        return BiLMOptions(
            lstm_dim=self.lstm_dim, projection_dim=self.projection_dim, n_layers=self.n_layers,
            cell_clip=self.cell_clip, proj_clip=self.proj_clip, use_skip_connections=self.use_skip_connections,
            char_dim=self.char_dim, filters=[(width, n) for width, n in self.filters], n_highway=self.n_highway,
            activation=self.activation, max_characters_per_token=self.max_characters_per_token,
        )


@dataclass(frozen=True)
class SoftmaxSettings:
    type: str
    n_samples: int
    cutoffs: Tuple[int, ...]
    div_value: float
    reuse: bool


@dataclass(frozen=True)
class TrainingSettings:
    seed: int
    max_steps: int
    max_tokens: int
    max_epochs: int
    max_seconds: float
    batch_tokens: int
    max_batch_size: int
    optimizer: str
    learning_rate: float
    initial_accumulator_value: float
    lr_schedule: str
    warmup_steps: int
    final_lr_fraction: float
    grad_clip: float
    precision: str
    checkpoint_every: int
    eval_every: int
    eval_at_start: bool
    log_every: int
    threads: int
    deterministic: bool
    export: str
    freeze_bilm_steps: int


_Section = TypeVar("_Section")


@dataclass(frozen=True)
class Settings:
    paths: PathSettings
    corpus: CorpusSettings
    vocab: VocabSettings
    model: ModelSettings
    softmax: SoftmaxSettings
    training: TrainingSettings

    @classmethod
    def from_config(cls, config: Config, where: str = "the config") -> "Settings":
        """Check the config (check_config: the one place settings are validated) and parse it once."""
        check_config(config, where=where)
        defaults = flat(Config().from_str(DEFAULT_CONFIG))
        # the fields' types are the section classes themselves (no string annotations in this module)
        sections: Dict[str, Any] = {f.name: f.type for f in dataclasses.fields(cls)}
        return cls(**{name: _section(kind, name, config.get(name, {}), defaults) for name, kind in sections.items()})


def _section(kind: Type[_Section], name: str, values: Dict[str, Any], defaults: Dict[str, Any]) -> _Section:
    parsed: Dict[str, Any] = {}
    for key, value in values.items():
        dotted = f"{name}.{key}"
        if _expected_kind(dotted, defaults[dotted]) == "number":
            value = float(value)
        elif dotted in CHOICES:
            value = str(value).lower()
        elif isinstance(value, list):  # frozen settings hold tuples: nothing can change them under the run
            value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        parsed[key] = value
    return kind(**parsed)


# Settings that may differ between a run and its --resume (everything else must match the checkpoint).
RESUMABLE_CHANGES = {
    "training.max_steps", "training.max_tokens", "training.max_epochs", "training.max_seconds", "training.checkpoint_every",
    "training.eval_every", "training.eval_at_start", "training.log_every", "training.threads", "paths.dev", "corpus.dev_max_sentences",
    # a run from before the setting existed resumes (and a run may change it: the rest of it then reproduces or not)
    "training.deterministic",
    # e.g. continue a diverged run with a lower learning rate or tighter clipping
    "training.learning_rate", "training.grad_clip",
    # the schedule is a function of the step and tokens in the checkpoint: a new one takes over from there
    "training.lr_schedule", "training.warmup_steps", "training.final_lr_fraction",
    # the best weights are kept in the checkpoint either way
    "training.export",
}


def architecture_settings(options: BiLMOptions) -> Dict[str, Any]:
    """The [model] settings (all but dropout) that describe the biLM of options: what paths.init_from's
    options.json sets. (options.n_characters has no setting: bilm-tf's 261 or 262 rows of char_embed are
    kept from options.json.)"""
    # the keys are ModelSettings' own (one list of architecture settings), with the values as a config holds them
    settings = {f.name: getattr(options, f.name) for f in dataclasses.fields(ModelSettings) if f.name != "dropout"}
    settings.update(cell_clip=float(options.cell_clip), proj_clip=float(options.proj_clip),
                    filters=[list(f) for f in options.filters])
    return settings


def with_defaults(config_text: str) -> Config:
    """A saved config (a checkpoint's) merged over DEFAULT_CONFIG: settings added to this tool after it was
    written count as their defaults, so they never make an older checkpoint look changed."""
    return Config().from_str(DEFAULT_CONFIG).merge(Config().from_str(config_text))


def flat(config: Config) -> Dict[str, Any]:
    return {f"{s}.{k}": v for s, section in config.items() for k, v in section.items()}


__all__ = ["DEFAULT_CONFIG", "CPU_MODEL", "sets_architecture", "load_config", "check_config", "bilm_options", "ConfigError", "RESUMABLE_CHANGES", "flat",
           "architecture_settings", "with_defaults",
           "Settings", "PathSettings", "CorpusSettings", "VocabSettings", "ModelSettings", "SoftmaxSettings",
           "TrainingSettings", "STOP_LIMITS", "SCHEDULES"]
