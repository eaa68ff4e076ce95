"""Size presets of the project: `ci` (tiny slices, minutes), `demo` (2-core CPU, 91.3 minutes measured, trainings to patience, two at a time), `full` (GPU).

Every step of scripts/run.py reads its settings from here; project.yml has one workflow per size
(`spacy project run ci|demo|full`) whose commands pass their size explicitly and keep their files
apart: corpus/SIZE/, training/SIZE/, metrics/SIZE/, packages/SIZE/.

Trainings stop when the dev score has not improved for `patience` steps (spaCy's [training] patience,
counted in steps, checked at each evaluation), ELMo and tok2vec alike; max_steps is only a cap for time,
and the report says which of the two stopped each run. `sentiment_seeds` lists the [system] seeds
trained per sentiment training set ("10": 10% of the training snippets, "100": all of them) and `ner_seeds`
those per CoNLL-2003 training fraction; the report gives their mean and how many seeds ELMo wins. Every seed,
0 included, trains both ELMo and tok2vec; all the size's trainings run as one queue, two at a time on CPU, longest
first (scripts/run.py train-all), so that they cost about half their serial time on a 2-core CPU and each trains beside one other. `stock_train` gives spaCy's stock ner config (`spacy init config --pipeline ner
--optimize efficiency`; its own loop: patience 1600, eval every 200, cap 20,000) the baseline's loop settings.
`sentiment_stock_seeds` lists the sentiment training sets (and seeds) also trained with spaCy's stock textcat
config (`spacy init config --pipeline textcat --optimize efficiency`: a bag of words, TextCatBOW), with
`sentiment_stock_train`'s loop (the sentiment loop's patience, evaluations and cap; its own batcher and optimizer),
so that the report can say where both sentiment models stand against what spaCy gives without either.
Domain adaptation (`adapt`: prepare_adapt_corpus.py's options, None for a size without it; `adapt_train`:
overrides of configs/pretrain_adapt.cfg) continues the size's biLM on the words of CoNLL-2003's training
sentences with `pretrain --init-from`. `ner_bilm` says which biLM ner's ELMo side reads: "adapted" (general
pretraining, then adaptation on the task's unlabelled training text, as the ELMo paper does for some tasks; needs
`adapt`) or "pretrained". Where it is "adapted", `unadapted_seeds` lists the ner training sets also trained on the
biLM before adaptation, with their seeds, so the report can say what each stage gives (compared with the tok2vec
run of the same fraction and seed that ner's comparison trains).
"""
from typing import Any, Dict, List

PRESETS: Dict[str, Dict[str, Any]] = {
    "ci": {
        "conll": ["--train-fractions", "0.1,0.25,1.0", "--limit-train", "400", "--limit-dev", "100", "--limit-test", "100"],
        "textcat": ["--limit", "16", "--max-tokens", "80"],
        "lm": ["--dev-fraction", "0.1", "--limit-words", "30000"],
        "pretrain_config": "configs/pretrain_tiny.cfg",
        "pretrain": ["--training.max_steps", "30"],  # the slowest ci step: enough for a biLM that loads and trains
        "ner": ["--training.max_steps", "60", "--training.eval_frequency", "30", "--training.patience", "60"],
        "textcat_train": ["--training.max_steps", "40", "--training.eval_frequency", "20", "--training.patience", "40"],
        "sentiment": ["--train-fractions", "0.1,1.0", "--limit-train", "300", "--limit-dev", "60", "--limit-test", "60"],
        "sentiment_train": ["--training.max_steps", "20", "--training.eval_frequency", "10", "--training.patience", "20",
                            "--training.batcher.size", "500"],
        # sentiment with tok2vec at 10% only (textcat-elmo runs the same config) and no stock ner: ci exercises each
        # step once and stays short
        "sentiment_seeds": {"10": [0], "100": []},
        # one extra ner seed at 10% (the smallest training set): ci trains a second seed of one comparison
        "ner_seeds": {"10": [0, 1], "25": [0], "100": [0]},
        "sentiment_features": ["tok2vec"],
        "stock_train": None,
        "sentiment_stock_seeds": {},
        "sentiment_stock_train": None,
        # adaptation is tested on its own (tests/commands/test_pretrain_init_from.py); ci stays short
        "adapt": None,
        "adapt_train": [],
        "ner_bilm": "pretrained",
        "unadapted_seeds": {},
    },
    "demo": {
        "conll": ["--train-fractions", "0.1,0.25,1.0"],
        "textcat": ["--max-tokens", "200"],
        "lm": ["--dev-fraction", "0.02"],
        "pretrain_config": "configs/pretrain_small.cfg",
        "pretrain": [],
        # patience 500 = two evaluations without a better dev F1 decides; 5,000 is only a guard (in `make demo` of b52a264
        # every ner run stopped on patience, after 1,250-3,500 steps). The earlier 1,500-step cap stopped 20 of 21 runs
        # and bent the comparison both ways (docs/EXPERIMENTS.md, "Training past the cap")
        "ner": ["--training.max_steps", "5000", "--training.eval_frequency", "250", "--training.patience", "500"],
        # the same for BBC topics: the 600-step cap of the demo of b52a264 stopped both sides, the baseline still improving
        # (in the demo of e81a82d both stopped on patience: ELMo at 800, tok2vec at 1,200; docs/EXPERIMENTS.md)
        "textcat_train": ["--training.max_steps", "5000", "--training.eval_frequency", "100", "--training.patience", "300"],
        "sentiment": ["--train-fractions", "0.1,1.0"],
        # ~23 snippets a step; 1,016 snippets (10%) are ~44 steps an epoch, 10,164 (100%) ~440
        "sentiment_train": ["--training.batcher.size", "500", "--training.eval_frequency", "25", "--training.patience", "200",
                            "--training.max_steps", "3000"],
        "sentiment_seeds": {"10": [0, 1, 2], "100": [0]},
        # issue 10's targets are means over 3 seeds at every fraction, with ELMo ahead in every seed at 10%
        "ner_seeds": {"10": [0, 1, 2], "25": [0, 1, 2], "100": [0, 1, 2]},
        # the baseline's loop (above), so that only the stock model and its optimizer schedule differ
        "stock_train": ["--training.max_steps", "5000", "--training.eval_frequency", "250", "--training.patience", "500"],
        # the seeds of the sentiment comparison; a bag of words trains in 14-22 s at 10%, 35 s at 100% (the demo of b9b08e1)
        "sentiment_stock_seeds": {"10": [0, 1, 2], "100": [0]},
        "sentiment_stock_train": ["--training.eval_frequency", "25", "--training.patience", "200", "--training.max_steps", "3000"],
        "adapt": ["--dev-fraction", "0.05"],
        "adapt_train": [],  # configs/pretrain_adapt.cfg as it is: 400k tokens, about 2 passes over the 193k words
        # ner minus tok2vec on the news biLM / on the adapted one, 3 seeds each, with the biLMs of the demo of 19050e4
        # (10%: that demo; 25% and 100%: the workflow's commands by hand): 10% +1.49 / +2.28, 25% +1.13 / +1.23,
        # 100% +1.44 / +1.74 (README, "Domain adaptation")
        "ner_bilm": "adapted",
        # what adaptation adds, 3 seeds as every downstream claim, where it adds most
        "unadapted_seeds": {"10": [0, 1, 2]},
    },
    "full": {
        "conll": ["--train-fractions", "0.1,0.25,1.0"],
        "textcat": ["--max-tokens", "400"],
        "lm": ["--dev-fraction", "0.02"],
        "pretrain_config": "configs/pretrain_full.cfg",
        "pretrain": [],
        "ner": ["--training.max_steps", "20000", "--training.eval_frequency", "500", "--training.patience", "2500"],
        "textcat_train": ["--training.max_steps", "5000", "--training.eval_frequency", "200", "--training.patience", "1000"],
        "sentiment": ["--train-fractions", "0.1,1.0"],
        "sentiment_train": ["--training.batcher.size", "500", "--training.eval_frequency", "50", "--training.patience", "1000",
                            "--training.max_steps", "20000"],
        "sentiment_seeds": {"10": [0, 1, 2], "100": [0, 1, 2]},
        "ner_seeds": {"10": [0, 1, 2], "25": [0, 1, 2], "100": [0, 1, 2]},
        "stock_train": ["--training.max_steps", "20000", "--training.eval_frequency", "500", "--training.patience", "2500"],
        "sentiment_stock_seeds": {"10": [0, 1, 2], "100": [0, 1, 2]},
        "sentiment_stock_train": ["--training.eval_frequency", "50", "--training.patience", "1000", "--training.max_steps", "20000"],
        "adapt": ["--dev-fraction", "0.05"],
        "adapt_train": ["--training.max_tokens", "2000000"],
        "ner_bilm": "adapted",
        "unadapted_seeds": {"10": [0, 1, 2], "100": [0, 1, 2]},
    },
}

FRACTIONS = {"10": "train_10.spacy", "25": "train_25.spacy", "100": "train.spacy"}


def preset(size: str) -> Dict[str, Any]:
    if size not in PRESETS:
        raise SystemExit(f"Unknown size preset {size!r}; choose one of {', '.join(PRESETS)} "
                         "(the project's workflows: spacy project run ci|demo|full).")
    return PRESETS[size]


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
