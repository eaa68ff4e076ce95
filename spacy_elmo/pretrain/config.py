"""Pretraining settings in spaCy's config format (confection/thinc Config), with dotted CLI overrides.

A user's config is merged over DEFAULT_CONFIG, so it only needs the settings it changes; the merged
config is written to DIR/config.cfg so a run documents itself."""
from pathlib import Path
from typing import Any, Dict, Optional, Union

from confection import Config

from ..bilm.options import BiLMOptions

DEFAULT_CONFIG = """
[paths]
train = null
dev = null
vocab = null

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

[training]
seed = 0
# stop at whichever limit comes first; 0 disables a limit
max_steps = 0
max_epochs = 10
max_seconds = 0
# padded tokens per batch and process, <S> and </S> included
batch_tokens = 4096
max_batch_size = 0
# adagrad (bilm-tf: lr 0.2, initial_accumulator_value 1.0) | adam
optimizer = "adagrad"
learning_rate = 0.2
initial_accumulator_value = 1.0
grad_clip = 10.0
# fp32 | bf16 | fp16 (autocast; fp16 uses a gradient scaler on CUDA)
precision = "fp32"
checkpoint_every = 500
eval_every = 500
# also evaluate the untrained model (step 0), the start of the dev curve
eval_at_start = true
log_every = 20
# torch intra-op threads per process (0: torch's default)
threads = 0
"""


class ConfigError(ValueError):
    pass


def load_config(path: Optional[Union[str, Path]] = None, overrides: Optional[Dict[str, Any]] = None) -> Config:
    """DEFAULT_CONFIG <- the file at path <- overrides ({"training.max_steps": 100, ...})."""
    config = Config().from_str(DEFAULT_CONFIG)
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"Config file not found: {path}")
        config = config.merge(Config().from_disk(path, interpolate=False))
    overrides = dict(overrides or {})
    for key in overrides:
        section, _, name = key.partition(".")
        if section not in config or (name and "." not in name and name not in config[section]):
            raise ConfigError(f"Unknown config setting '{key}'. Known sections: {', '.join(config.keys())}.")
    config = Config().from_str(config.to_str(), overrides=overrides)
    return config.interpolate()


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


# Settings that may differ between a run and its --resume (everything else must match the checkpoint).
RESUMABLE_CHANGES = {
    "training.max_steps", "training.max_epochs", "training.max_seconds", "training.checkpoint_every",
    "training.eval_every", "training.eval_at_start", "training.log_every", "training.threads", "paths.dev", "corpus.dev_max_sentences",
    # e.g. continue a diverged run with a lower learning rate or tighter clipping
    "training.learning_rate", "training.grad_clip",
}


def flat(config: Config) -> Dict[str, Any]:
    return {f"{s}.{k}": v for s, section in config.items() for k, v in section.items()}


__all__ = ["DEFAULT_CONFIG", "load_config", "bilm_options", "ConfigError", "RESUMABLE_CHANGES", "flat"]
