"""Size presets of the project: `ci` (tiny slices, minutes), `demo` (2-core CPU, < 45 minutes), `full` (GPU).

Every step of scripts/run.py reads its settings from here; project.yml has one workflow per size
(`spacy project run ci|demo|full`) whose commands pass their size explicitly and keep their files
apart: corpus/SIZE/, training/SIZE/, metrics/SIZE/, packages/SIZE/.
"""
from typing import Any, Dict, List

PRESETS: Dict[str, Dict[str, Any]] = {
    "ci": {
        "conll": ["--train-fractions", "0.1,0.25,1.0", "--limit-train", "400", "--limit-dev", "100", "--limit-test", "100"],
        "textcat": ["--limit", "16", "--max-tokens", "80"],
        "lm": ["--dev-fraction", "0.1", "--limit-words", "30000"],
        "pretrain_config": "configs/pretrain_tiny.cfg",
        "pretrain": ["--training.max_steps", "30"],  # the slowest ci step: enough for a biLM that loads and trains
        "ner": ["--training.max_steps", "60", "--training.eval_frequency", "30"],
        "textcat_train": ["--training.max_steps", "40", "--training.eval_frequency", "20"],
    },
    "demo": {
        "conll": ["--train-fractions", "0.1,0.25,1.0"],
        "textcat": ["--max-tokens", "200"],
        "lm": ["--dev-fraction", "0.02"],
        "pretrain_config": "configs/pretrain_small.cfg",
        "pretrain": [],
        "ner": ["--training.max_steps", "1500", "--training.eval_frequency", "250"],
        "textcat_train": ["--training.max_steps", "600", "--training.eval_frequency", "100"],
    },
    "full": {
        "conll": ["--train-fractions", "0.1,0.25,1.0"],
        "textcat": ["--max-tokens", "400"],
        "lm": ["--dev-fraction", "0.02"],
        "pretrain_config": "configs/pretrain_full.cfg",
        "pretrain": [],
        "ner": ["--training.max_steps", "20000", "--training.eval_frequency", "500"],
        "textcat_train": ["--training.max_steps", "5000", "--training.eval_frequency", "200"],
    },
}

FRACTIONS = {"10": "train_10.spacy", "25": "train_25.spacy", "100": "train.spacy"}


def preset(size: str) -> Dict[str, Any]:
    if size not in PRESETS:
        raise SystemExit(f"Unknown size preset {size!r}; choose one of {', '.join(PRESETS)} "
                         "(the project's workflows: spacy project run ci|demo|full).")
    return PRESETS[size]


def gpu_args(gpu_id: int) -> List[str]:
    return ["--gpu-id", str(gpu_id)] if gpu_id >= 0 else []
