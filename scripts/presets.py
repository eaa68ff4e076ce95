"""The settings of each size of the workflow, one table per size: `ci` (tiny slices, minutes), `demo` (a 2-core CPU,
the default) and `full` (the published architecture on all data, for a GPU). project.yml picks one with
`--vars.size SIZE`; every step of scripts/run.py reads its settings here and writes only the size's folders:
corpus/SIZE/, training/SIZE/, metrics/SIZE/ and packages/SIZE/.

Each entry is named as what it sets, so a value is one hop from the file it changes:
- `conll`, `bbc`, `sentiment`, `lm`, `adapt`: the options of scripts/prepare_<data>.py, named as the script's own
  options (`limit_train` is `--limit-train`); `adapt` None: a size without domain adaptation.
- `pretrain_config`: the pretraining config; `pretrain`, `adapt_train`: overrides of it and of
  configs/pretrain_adapt.cfg, named as the config keys they set (`training.max_steps` is [training] max_steps).
- `ner_train`, `textcat_train`, `sentiment_train`: overrides of configs/{ner,textcat}_{elmo,tok2vec}.cfg (sentiment
  trains the textcat configs), the same for both sides of a comparison; `ner_stock_train`, `sentiment_stock_train`:
  of spaCy's stock efficiency configs (`spacy init config --pipeline ner|textcat --optimize efficiency`), None for a
  size without them (`textcat_train` None: no BBC textcat). What a config file shows runs unless its size's table
  names the key.
- `ner_seeds`, `sentiment_seeds`, `sentiment_stock_seeds`, `unadapted_seeds`: the [system] seeds trained per training
  set ("10": 10% of the training sentences); the report gives their mean. `sentiment_features`: the sides that
  sentiment trains (default both).
- `ner_bilm`: the biLM ner's ELMo side reads, "adapted" (general pretraining, then `pretrain --init-from` on the
  task's unlabelled training text, as the ELMo paper does for some tasks) or "pretrained"; where it is "adapted",
  `unadapted_seeds` also trains ner on the biLM before adaptation, so the report can say what each stage gives.

Every training stops when its dev score has not improved for `training.patience` steps; `training.max_steps` is only
a cap for time, and the report says which of the two stopped each run.
"""
from typing import Any, Dict, List

PRESETS: Dict[str, Dict[str, Any]] = {
    "ci": {
        "conll": {"train_fractions": "0.1,0.25,1.0", "limit_train": 400, "limit_dev": 100, "limit_test": 100},
        "bbc": {"limit": 16, "max_tokens": 80},
        "sentiment": {"train_fractions": "0.1,1.0", "limit_train": 300, "limit_dev": 60, "limit_test": 60},
        "lm": {"dev_fraction": 0.1, "limit_words": 30000},
        # the adaptation step runs, on a slice, so that ci exercises it; ci's ner still reads the pretrained biLM
        "adapt": {"limit_train": 400, "dev_fraction": 0.1},
        "pretrain_config": "configs/pretrain_tiny.cfg",
        "pretrain": {"training.max_steps": 30},  # enough for a biLM that loads and trains
        "adapt_train": {"training.max_tokens": 0, "training.max_steps": 6, "training.eval_every": 3,
                        "training.checkpoint_every": 3, "training.log_every": 3,
                        "softmax.cutoffs": []},  # the slice's vocabulary is below the config's cutoffs
        "ner_train": {"training.max_steps": 60, "training.eval_frequency": 30, "training.patience": 60},
        "textcat_train": {"training.max_steps": 40, "training.eval_frequency": 20, "training.patience": 40},
        "sentiment_train": {"training.max_steps": 20, "training.eval_frequency": 10, "training.patience": 20,
                            "training.batcher.size": 500},
        "ner_stock_train": None,
        "sentiment_stock_train": None,
        # one extra ner seed at 10%, sentiment with tok2vec at 10% only: each kind of run once, and short
        "ner_seeds": {"10": [0, 1], "25": [0], "100": [0]},
        "sentiment_seeds": {"10": [0], "100": []},
        "sentiment_features": ["tok2vec"],
        "sentiment_stock_seeds": {},
        "ner_bilm": "pretrained",
        "unadapted_seeds": {},
    },
    "demo": {
        "conll": {"train_fractions": "0.1,0.25,1.0"},
        "bbc": {"max_tokens": 200},
        "sentiment": {"train_fractions": "0.1,1.0"},
        "lm": {"dev_fraction": 0.02},
        "adapt": {"dev_fraction": 0.05},
        "pretrain_config": "configs/pretrain_small.cfg",
        "pretrain": {},
        "adapt_train": {},
        # patience: two evaluations without a better dev score decide; max_steps only guards the time
        # (docs/EXPERIMENTS.md, "Training past the cap")
        "ner_train": {"training.max_steps": 5000, "training.eval_frequency": 250, "training.patience": 500},
        "textcat_train": {"training.max_steps": 5000, "training.eval_frequency": 100, "training.patience": 300},
        # ~23 snippets a step: 10% of the training snippets is ~44 steps an epoch, all of them ~440
        "sentiment_train": {"training.batcher.size": 500, "training.eval_frequency": 25, "training.patience": 200,
                            "training.max_steps": 3000},
        # the baseline's loop, so that only the stock model and its optimizer schedule differ
        "ner_stock_train": {"training.max_steps": 5000, "training.eval_frequency": 250, "training.patience": 500},
        "sentiment_stock_train": {"training.eval_frequency": 25, "training.patience": 200, "training.max_steps": 3000},
        # every claim is a mean over 3 seeds
        "ner_seeds": {"10": [0, 1, 2], "25": [0, 1, 2], "100": [0, 1, 2]},
        "sentiment_seeds": {"10": [0, 1, 2], "100": [0]},
        "sentiment_stock_seeds": {"10": [0, 1, 2], "100": [0]},
        "ner_bilm": "adapted",
        # what adaptation adds, where it adds most
        "unadapted_seeds": {"10": [0, 1, 2]},
    },
    "full": {
        "conll": {"train_fractions": "0.1,0.25,1.0"},
        "bbc": {"max_tokens": 400},
        "sentiment": {"train_fractions": "0.1,1.0"},
        "lm": {"dev_fraction": 0.02},
        "adapt": {"dev_fraction": 0.05},
        "pretrain_config": "configs/pretrain_full.cfg",
        "pretrain": {},
        "adapt_train": {"training.max_tokens": 2000000},
        "ner_train": {"training.max_steps": 20000, "training.eval_frequency": 500, "training.patience": 2500},
        "textcat_train": {"training.max_steps": 5000, "training.eval_frequency": 200, "training.patience": 1000},
        "sentiment_train": {"training.batcher.size": 500, "training.eval_frequency": 50, "training.patience": 1000,
                            "training.max_steps": 20000},
        "ner_stock_train": {"training.max_steps": 20000, "training.eval_frequency": 500, "training.patience": 2500},
        "sentiment_stock_train": {"training.eval_frequency": 50, "training.patience": 1000, "training.max_steps": 20000},
        "ner_seeds": {"10": [0, 1, 2], "25": [0, 1, 2], "100": [0, 1, 2]},
        "sentiment_seeds": {"10": [0, 1, 2], "100": [0, 1, 2]},
        "sentiment_stock_seeds": {"10": [0, 1, 2], "100": [0, 1, 2]},
        "ner_bilm": "adapted",
        "unadapted_seeds": {"10": [0, 1, 2], "100": [0, 1, 2]},
    },
    # The GPU demo (`make gpu-demo-data` here, `make gpu-demo` on a GPU machine without a registry): a biLM
    # pretrained on one GPU in minutes, then ner at 10% and 100% of CoNLL-2003 on it and on tok2vec. bbc, sentiment
    # and adapt are prepared on slices only because the workflow's commands read them; nothing trains on them.
    "gpu": {
        "conll": {"train_fractions": "0.1,0.25,1.0"},
        "bbc": {"limit": 16, "max_tokens": 80},
        "sentiment": {"train_fractions": "0.1,1.0", "limit_train": 300, "limit_dev": 60, "limit_test": 60},
        "lm": {"dev_fraction": 0.02},
        "adapt": {"limit_train": 400, "dev_fraction": 0.1},
        "pretrain_config": "configs/pretrain_gpu.cfg",
        "pretrain": {"training.max_seconds": 170},  # a wall-clock cap beside the config's max_steps
        "adapt_train": {"training.max_tokens": 0, "training.max_steps": 6, "training.eval_every": 3,
                        "training.checkpoint_every": 3, "training.log_every": 3, "softmax.cutoffs": []},
        # the same step budget for ELMo and tok2vec, so the baseline trains just as long
        "ner_train": {"training.max_steps": 150, "training.eval_frequency": 50, "training.patience": 150},
        "textcat_train": None,
        "sentiment_train": None,
        "ner_stock_train": None,
        "sentiment_stock_train": None,
        "ner_seeds": {"10": [0], "25": [], "100": [0]},
        "sentiment_seeds": {"10": [], "100": []},
        "sentiment_stock_seeds": {},
        "ner_bilm": "pretrained",
        "unadapted_seeds": {},
    },
}

FRACTIONS = {"10": "train_10.spacy", "25": "train_25.spacy", "100": "train.spacy"}


def preset(size: str) -> Dict[str, Any]:
    if size not in PRESETS:
        raise SystemExit(f"Unknown size preset {size!r}; choose one of {', '.join(PRESETS)} "
                         "(spacy project run all . --vars.size SIZE).")
    return PRESETS[size]


def options(values: Dict[str, Any]) -> List[str]:
    """A table entry as command-line options: {"limit_train": 400} -> --limit-train 400 (a script's option);
    {"training.patience": 500} -> --training.patience 500 (a config key, as spaCy's CLI overrides name it)."""
    argv: List[str] = []
    for key, value in values.items():
        argv += ["--" + (key if "." in key else key.replace("_", "-")), str(value)]
    return argv


def ner_reads_adapted_bilm(size: str) -> bool:
    """Whether the size's ner ELMo runs train on the adapted biLM (`ner_bilm`); a value other than "adapted" or
    "pretrained", or "adapted" in a size without an `adapt` step, is an error."""
    p = preset(size)
    if p["ner_bilm"] not in ("adapted", "pretrained"):
        raise SystemExit(f"Size {size}: ner_bilm is {p['ner_bilm']!r}; choose 'adapted' or 'pretrained' (scripts/presets.py).")
    if p["ner_bilm"] == "adapted" and p["adapt"] is None:
        raise SystemExit(f"Size {size}: ner_bilm is 'adapted' but the size has no adaptation step (scripts/presets.py).")
    return p["ner_bilm"] == "adapted"


def gpu_args(gpu_id: int) -> List[str]:
    return ["--gpu-id", str(gpu_id)] if gpu_id >= 0 else []
