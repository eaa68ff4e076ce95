"""The project's steps, one call per command of project.yml. Each prints the exact command it runs,
so any step can be rerun by hand.

    python scripts/run.py check --size SIZE
    python scripts/run.py prepare conll|bbc|sentiment|lm|adapt --size SIZE
    python scripts/run.py pretrain-config --size SIZE
    python scripts/run.py pretrain --size SIZE [--gpu-id N]
    python scripts/run.py adapt --size SIZE [--elmo DIR] [--gpu-id N]
    python scripts/run.py train ner|textcat|sentiment elmo|tok2vec|stock|unadapted 10|25|100 --size SIZE [--seed N] [--elmo DIR] [--gpu-id N]
    python scripts/run.py evaluate ner|textcat|sentiment elmo|tok2vec|stock|unadapted 10|25|100 --size SIZE [--seed N] [--gpu-id N]
    python scripts/run.py train-all --size SIZE [--elmo DIR] [--gpu-id N] [--jobs N]
    python scripts/run.py evaluate-all --size SIZE [--gpu-id N] [--jobs N]
    python scripts/run.py package --size SIZE --name NAME --version VERSION
    python scripts/run.py wheel

SIZE is ci, demo, full or gpu, a table of settings each (scripts/presets.py). A size reads and writes only its own
folders: corpus/SIZE/, training/SIZE/ (the biLMs; every pipeline under training/SIZE/runs/), metrics/SIZE/ (each
pipeline's scores under metrics/SIZE/runs/, the report beside them) and packages/SIZE/. The `*_commands` functions
build the argv lists without running anything (tests/test_project.py checks them against project.yml).

Every training stops when its dev score has not improved for [training] patience steps (or at the size's
max_steps cap) and logs each evaluation to DIR/train_log.jsonl; `train` then writes DIR/train_summary.json (best
step, last step, what stopped it, seconds), and `evaluate` adds it to the metrics file under "training".

`train-all` trains every pipeline of the size (both sides of each comparison at every seed, spaCy's stock ner and
textcat, the ner on the biLM before adaptation) as one queue with two slots on CPU: two trainings at a time, each in
its own process with half the cores for torch and BLAS, every output line prefixed with its run's name, and whenever
one ends the next starts, the most expected first (expected_cost: training share x step cap, twice with ELMo), so no
core waits for a slower run beside it. A `[queue]` line says which run of how many starts and about how long is
left. With a GPU (--gpu-id >= 0) --jobs defaults to 1. `evaluate-all` scores them the same way; `train` and
`evaluate` retrain or rescore one pipeline by itself.

Where the size's `ner_bilm` is "adapted", ner's ELMo side reads the biLM that `adapt` continued on CoNLL-2003's
training text (training/SIZE/elmo_adapted) and the `unadapted` runs train the same config on the pretrained biLM
(training/SIZE/elmo); textcat and sentiment always read the pretrained one.
"""
import json
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import typer

sys.path.insert(0, str(Path(__file__).parent))
from job_queue import Job, JobResult, queue_line, require_success, run_side_by_side  # noqa: E402,F401
from presets import FRACTIONS, gpu_args, ner_reads_adapted_bilm, options, preset  # noqa: E402

PY = sys.executable
app = typer.Typer(add_completion=False, no_args_is_help=True)
SIZE = typer.Option(..., "--size", help="ci, demo, full or gpu (scripts/presets.py)")
GPU = typer.Option(-1, "--gpu-id", help="GPU id, -1 for CPU")
SEED = typer.Option(0, "--seed", help="[system] seed of the training (a seed other than 0 gets its own folders)")
JOBS = typer.Option(None, "--jobs", help="how many run at once: default 2 on CPU, 1 on a GPU")

TASKS = ("ner", "textcat", "sentiment")
FEATURES = ("elmo", "tok2vec")
# What each prepare step reads (under assets/), the script that does it and its folder under corpus/SIZE/; the
# script's options are the size's table entry of the same name (scripts/presets.py).
DATA = {"conll": ("conll2003", "scripts/prepare_conll.py", "conll2003"),
        "bbc": ("bbc", "scripts/prepare_textcat.py", "bbc"),
        "sentiment": ("rotten_tomatoes", "scripts/prepare_sentiment.py", "sentiment"),
        "lm": ("news", "scripts/prepare_lm_corpus.py", "lm"),
        "adapt": ("conll2003", "scripts/prepare_adapt_corpus.py", "adapt")}
ADAPT_CONFIG = "configs/pretrain_adapt.cfg"
TASK_DATA = {"ner": "conll", "textcat": "bbc", "sentiment": "sentiment"}
# Sentiment trains the textcat configs on the Rotten Tomatoes snippets (with the table's sentiment_train).
TASK_CONFIG = {"ner": "ner", "textcat": "textcat", "sentiment": "textcat"}
# spaCy's own `spacy init config --pipeline ner|textcat --optimize efficiency`, trained beside the baseline: ner once at
# 10%; sentiment (textcat: a bag of words) at the sentiment comparison's training sets and seeds.
STOCK_PIPELINE = {"ner": "ner", "sentiment": "textcat"}
# What the workflow needs beyond the package itself (the `project` extra), checked before its first step.
REQUIREMENTS = {"build": "spacy package --build wheel", "matplotlib": "the report's chart"}
Run = Tuple[str, str, str, int]  # (task, features, fraction, seed)
COMPARED_FEATURES = ("elmo", "tok2vec")  # the two sides of each comparison the report makes


def stock_init(task: str) -> List[str]:
    """`spacy init config` options of the task's stock efficiency pipeline."""
    return ["--lang", "en", "--pipeline", STOCK_PIPELINE[task], "--optimize", "efficiency"]


def sh(args: List[str]) -> None:
    print(f"\n$ {shlex.join(args)}", flush=True)
    start = time.perf_counter()
    returncode = subprocess.run(args).returncode
    if returncode != 0:  # the command's own output says why; this says which one, without a traceback
        raise SystemExit(f"Failed with exit code {returncode} after {time.perf_counter() - start:.0f}s: {shlex.join(args)}")
    print(f"({time.perf_counter() - start:.0f}s)", flush=True)


def parallel_jobs(jobs: Optional[int], gpu_id: int) -> int:
    """Two trainings at a time on CPU (spaCy's trainings use about one core each); one after the other on a GPU (two
    trainings sharing one GPU's memory and time are not what a user asks for by default)."""
    return jobs if jobs is not None else (2 if gpu_id < 0 else 1)


def runs(size: str) -> Iterator[Run]:
    """(task, features, fraction, seed) of every pipeline a size trains: ner at three data sizes and sentiment at a
    small and the full training set (each with the preset's seeds), textcat once, spaCy's stock ner at 10% (where the
    table has ner_stock_train) and its stock textcat on sentiment (sentiment_stock_seeds)."""
    p = preset(size)
    for features in FEATURES:
        for fraction in FRACTIONS:
            for seed in p["ner_seeds"][fraction]:
                yield "ner", features, fraction, seed
        if p["textcat_train"] is not None:  # None: a size without the BBC textcat (gpu)
            yield "textcat", features, "100", 0
        for fraction in ("10", "100"):
            for seed in p["sentiment_seeds"][fraction] if features in p.get("sentiment_features", FEATURES) else []:
                yield "sentiment", features, fraction, seed
    if p["ner_stock_train"] is not None:  # None: a size without the stock comparison (ci, to keep it short)
        yield "ner", "stock", "10", 0
    for fraction, seeds in p["sentiment_stock_seeds"].items():
        for seed in seeds:
            yield "sentiment", "stock", fraction, seed
    for fraction, seeds in p["unadapted_seeds"].items():  # ner on the biLM before adaptation (bilm_dir)
        for seed in seeds:
            yield "ner", "unadapted", fraction, seed


def comparisons(size: str) -> List[Tuple[str, str, int]]:
    """(task, fraction, seed) of every comparison the size trains with both ELMo and tok2vec, seed 0 included. A
    seed-0 run without its partner (ci's sentiment: tok2vec only) is a lone run; a preset that lists an extra seed
    for one side only is an error (its seeds' mean would compare different seeds)."""
    trained = list(runs(size))
    found = list(dict.fromkeys((task, fraction, seed) for task, features, fraction, seed in trained
                               if features in COMPARED_FEATURES))
    compared = []
    for task, fraction, seed in found:
        sides = [f for t, f, fr, s in trained if (t, fr, s) == (task, fraction, seed) and f in COMPARED_FEATURES]
        if sorted(sides) == sorted(COMPARED_FEATURES):
            compared.append((task, fraction, seed))
        elif seed:
            raise SystemExit(f"Size {size}: {task} {fraction} --seed {seed} trains {' + '.join(sides)}; seeds other than 0 "
                             f"train both {' and '.join(COMPARED_FEATURES)} (scripts/presets.py).")
    return compared


def training_settings(size: str, run: Run) -> Dict[str, Any]:
    """The size's table entry of overrides a run trains with: the stock configs keep their own batcher and optimizer,
    and the size sets their patience, evaluations and cap."""
    task, features = run[0], run[1]
    return preset(size)[f"{task}_stock_train" if features == "stock" else f"{task}_train"]


def expected_cost(size: str, run: Run) -> float:
    """The queue's rule for how long a run takes: its share of the training set times its step cap, twice that with
    ELMo features (each step also runs the biLM). Only the order it gives matters."""
    cap = training_settings(size, run).get("training.max_steps", 0)
    return int(run[2]) * cap * (2 if run[1] in ("elmo", "unadapted") else 1)


def longest_first(trained: List[Run], size: str) -> List[Run]:
    """The runs in the order train-all queues them, the most expected first (ties keep runs' order), so that the
    queue's slots end close together (the longest-processing-time rule) instead of one waiting for the other."""
    return sorted(trained, key=lambda run: -expected_cost(size, run))


def check_run(task: str, features: str, fraction: str, seed: int, size: str) -> None:
    if (task, features, fraction, seed) not in set(runs(size)):
        valid = ", ".join(run_label(*run) for run in runs(size))
        raise SystemExit(f"No pipeline {run_label(task, features, fraction, seed)} in size {size}; it trains: {valid}.")


def run_label(task: str, features: str, fraction: str, seed: int = 0) -> str:
    return f"{task} {features} {fraction}" + (f" --seed {seed}" if seed else "")


def run_name(task: str, features: str, fraction: str, seed: int = 0) -> str:
    """ner_elmo_10, sentiment_tok2vec_10_seed2: the folder and metrics name (seed 0 has no suffix)."""
    return f"{task}_{features}_{fraction}" + (f"_seed{seed}" if seed else "")


def corpus_dir(size: str, data: str) -> str:
    return f"corpus/{size}/{DATA[data][2]}"


def elmo_dir(size: str) -> str:
    """Where the size's pretrain step exports its biLM (options.json, weights.hdf5, vocab.txt, metrics.json)."""
    return f"training/{size}/elmo"


def adapted_dir(size: str, frozen: bool = False) -> str:
    """The size's biLM adapted to CoNLL-2003's training text; frozen: the same run with only the softmax trained
    (its biLM bit-equal to the starting one), whose dev perplexity is the fair 'before' figure."""
    return f"training/{size}/elmo_adapt_frozen" if frozen else f"training/{size}/elmo_adapted"


def bilm_dir(size: str, task: str, features: str) -> Optional[str]:
    """The biLM a run's ELMo features come from, None for a run without them (tok2vec, stock): ner's ELMo side on
    the adapted biLM where the preset's `ner_bilm` is "adapted", every other ELMo run (textcat, sentiment, the
    `unadapted` ner of the stage comparison) on the pretrained one."""
    if features not in ("elmo", "unadapted"):
        return None
    if ner_reads_adapted_bilm(size) and features == "elmo" and task == "ner":
        return adapted_dir(size)
    return elmo_dir(size)


def pipelines_dir(size: str) -> str:
    """Where train-all writes every pipeline of the size: one folder, whatever the size trains."""
    return f"training/{size}/runs"


def scores_dir(size: str) -> str:
    """Where evaluate-all writes each pipeline's test scores (the report writes beside it, in metrics/SIZE/)."""
    return f"metrics/{size}/runs"


def pipeline_dir(size: str, task: str, features: str, fraction: str, seed: int = 0) -> str:
    return f"{pipelines_dir(size)}/{run_name(task, features, fraction, seed)}"


def metrics_file(size: str, task: str, features: str, fraction: str, seed: int = 0) -> str:
    return f"{scores_dir(size)}/{run_name(task, features, fraction, seed)}.json"


def pretrain_config(size: str) -> str:
    """The size's pretraining config as its pretrain step reads it: a copy of the table's pretrain_config, so that
    an edit to another size's pretraining config reruns nothing here."""
    return f"training/{size}/pretrain.cfg"


def train_log(size: str, *run: Any) -> str:
    return f"{pipeline_dir(size, *run)}/train_log.jsonl"


def train_summary_file(size: str, *run: Any) -> str:
    return f"{pipeline_dir(size, *run)}/train_summary.json"


def prepare_commands(data: str, size: str) -> List[List[str]]:
    if data not in DATA:
        raise SystemExit(f"Unknown data {data!r}; choose one of {', '.join(DATA)}.")
    values = preset(size)[data]
    if values is None:
        raise SystemExit(f"Size {size} has no {data} step (scripts/presets.py).")
    assets, script, _ = DATA[data]
    return [[PY, script, f"assets/{assets}", corpus_dir(size, data), *options(values)]]


def pretrain_commands(size: str, gpu_id: int = -1) -> List[List[str]]:
    p = preset(size)
    lm = corpus_dir(size, "lm")
    return [[PY, "-m", "spacy_elmo", "pretrain", pretrain_config(size), "--output", elmo_dir(size),
             "--paths.train", f"{lm}/train.txt", "--paths.dev", f"{lm}/dev.txt", *options(p["pretrain"]), *gpu_args(gpu_id)]]


def adapt_commands(size: str, elmo: Optional[str] = None, gpu_id: int = -1) -> List[List[str]]:
    """pretrain --init-from the size's biLM (or `elmo`) on CoNLL-2003's training words: first with the biLM frozen
    (only the new softmax trains: the 'before' perplexity), then adapted, same vocabulary, data and budget."""
    p = preset(size)
    if p["adapt"] is None:
        raise SystemExit(f"Size {size} has no adaptation step (scripts/presets.py).")
    corpus = corpus_dir(size, "adapt")
    common = ["--init-from", elmo or elmo_dir(size), "--paths.train", f"{corpus}/train.txt", "--paths.dev", f"{corpus}/dev.txt",
              *options(p["adapt_train"]), *gpu_args(gpu_id)]
    return [[PY, "-m", "spacy_elmo", "pretrain", ADAPT_CONFIG, "--output", adapted_dir(size, frozen=True), *common,
             "--training.freeze_bilm_steps", "1000000000"],
            [PY, "-m", "spacy_elmo", "pretrain", ADAPT_CONFIG, "--output", adapted_dir(size), *common]]


def train_config(size: str, task: str, features: str, fraction: str, seed: int = 0) -> str:
    """The project's config, or for the stock run the one `spacy init config` writes into its folder."""
    if features == "stock":
        return f"{pipeline_dir(size, task, features, fraction, seed)}/stock.cfg"
    if features == "unadapted":  # the ELMo config, on the biLM before adaptation
        return f"configs/{TASK_CONFIG[task]}_elmo.cfg"
    return f"configs/{TASK_CONFIG[task]}_{features}.cfg"


def train_commands(task: str, features: str, fraction: str, size: str, gpu_id: int = -1,
                   elmo: Optional[str] = None, seed: int = 0) -> List[List[str]]:
    check_run(task, features, fraction, seed, size)
    run = (task, features, fraction, seed)
    corpus = corpus_dir(size, TASK_DATA[task])
    config = train_config(size, *run)
    bilm = bilm_dir(size, task, features)
    overrides = options(training_settings(size, run))
    commands = [[PY, "-m", "spacy", "init", "config", config, *stock_init(task)]] if features == "stock" else []
    commands.append(
        [PY, "-m", "spacy", "train", config,
         "--output", pipeline_dir(size, *run),
         "--paths.train", f"{corpus}/{FRACTIONS[fraction]}", "--paths.dev", f"{corpus}/dev.spacy",
         *(["--paths.elmo_weights", elmo or bilm] if bilm else []),
         *(["--system.seed", str(seed)] if seed else []),
         # every evaluation as a JSON line (ConsoleLogger.v2 is v1 with an output file): what train_summary reads
         "--training.logger.@loggers", "spacy.ConsoleLogger.v2", "--training.logger.output_file", train_log(size, *run),
         *overrides, *gpu_args(gpu_id)])
    return commands


def read_config_training(config: str, overrides: List[str]) -> Dict[str, int]:
    """[training] patience / eval_frequency / max_steps as the training used them (config + CLI overrides)."""
    from spacy.util import load_config

    keys = ("patience", "eval_frequency", "max_steps")
    given = {overrides[i][len("--training."):]: overrides[i + 1] for i in range(0, len(overrides) - 1)
             if overrides[i].startswith("--training.") and overrides[i][len("--training."):] in keys}
    training = load_config(config, interpolate=False)["training"]
    return {key: int(given.get(key, training[key])) for key in keys}


def train_summary(log_path: Path, settings: Dict[str, int], seconds: float) -> Dict[str, Any]:
    """From spaCy's evaluation log: the step of the best dev score (the earliest of equal ones, as spaCy picks
    model-best), the last evaluated step, and whether patience or the max_steps cap ended the training."""
    evals = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    if not evals:
        raise SystemExit(f"{log_path}: no evaluation logged")
    best = max(evals, key=lambda e: (e["score"], -e["step"]))
    last = evals[-1]["step"]
    patience, max_steps = settings["patience"], settings["max_steps"]
    if patience and last - best["step"] >= patience:
        stopped = "patience"
    elif max_steps and last >= max_steps:
        stopped = "max_steps"
    else:
        stopped = "other"
    return {"best_step": best["step"], "best_score": best["score"], "best_epoch": best["epoch"],
            "last_step": last, "last_epoch": evals[-1]["epoch"], "n_evaluations": len(evals), "stopped_by": stopped,
            **settings, "train_seconds": round(seconds, 1)}


def evaluate_commands(task: str, features: str, fraction: str, size: str, gpu_id: int = -1,
                      seed: int = 0) -> List[List[str]]:
    check_run(task, features, fraction, seed, size)
    run = (task, features, fraction, seed)
    corpus = corpus_dir(size, TASK_DATA[task])
    return [[PY, "-m", "spacy", "evaluate", f"{pipeline_dir(size, *run)}/model-best",
             f"{corpus}/test.spacy", "--output", metrics_file(size, *run), *gpu_args(gpu_id)]]


def pretrained_override(size: str, run: Run, elmo: Optional[str]) -> Optional[str]:
    """train-all's --elmo replaces the pretrained biLM (training/SIZE/elmo) wherever a run reads it; ner's ELMo side
    keeps the biLM adapted from it."""
    return elmo if bilm_dir(size, run[0], run[1]) == elmo_dir(size) else None


def train_all_commands(size: str, gpu_id: int = -1, elmo: Optional[str] = None) -> Dict[Run, List[List[str]]]:
    """Every run of the size with its training commands, in the order train-all queues them (longest first)."""
    comparisons(size)  # a comparison with one side missing is an error before anything trains
    return {run: train_commands(*run[:3], size, gpu_id, elmo=pretrained_override(size, run, elmo), seed=run[3])
            for run in longest_first(list(runs(size)), size)}


def evaluate_all_commands(size: str, gpu_id: int = -1) -> Dict[Run, List[List[str]]]:
    """Every run of the size with its evaluation commands, queued as train-all trains them."""
    return {run: evaluate_commands(*run[:3], size, gpu_id, seed=run[3]) for run in longest_first(list(runs(size)), size)}


WHEEL_DIR = "packages/spacy_elmo"


def wheel_commands() -> List[List[str]]:
    """This project's own spacy-elmo wheel, which the packaged pipelines require."""
    return [[PY, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", WHEEL_DIR, "."]]


def package_commands(size: str, name: str, version: str) -> List[List[str]]:
    """The ELMo ner pipeline (100% of train) as a wheel: with the spacy-elmo wheel from `wheel` beside it,
    `pip install packages/spacy_elmo/*.whl packages/SIZE/*/dist/*.whl` needs nothing else but the registries."""
    preset(size)
    return [[PY, "-m", "spacy", "package", f"{pipeline_dir(size, 'ner', 'elmo', '100')}/model-best", f"packages/{size}",
             "--name", name, "--version", version, "--build", "wheel", "--force"]]


def fresh(path: str) -> None:
    """A step owns its output folder: what an earlier or interrupted run left there is removed first."""
    if Path(path).exists():
        print(f"removing the previous {path}", flush=True)
        shutil.rmtree(path)


@app.command()
def prepare(data: str = typer.Argument(..., help="conll, bbc, sentiment, lm or adapt"), size: str = SIZE) -> None:
    for args in prepare_commands(data, size):
        sh(args)


def missing_requirements() -> List[str]:
    """The modules of REQUIREMENTS that this Python cannot import."""
    import importlib.util

    return [name for name in REQUIREMENTS if importlib.util.find_spec(name) is None]


@app.command()
def check(size: str = SIZE) -> None:
    """Before the workflow's first step: the size has a table, and what the workflow needs beyond the package
    (build, matplotlib) is installed."""
    preset(size)
    missing = missing_requirements()
    if missing:
        uses = "; ".join(f"{name}: {REQUIREMENTS[name]}" for name in missing)
        raise SystemExit(f"The workflow needs {', '.join(missing)} ({uses}); install them with: "
                         f"{PY} -m pip install -e '.[project]'")
    print(f"The workflow's requirements are installed: {', '.join(REQUIREMENTS)}.")


@app.command("pretrain-config")
def pretrain_config_step(size: str = SIZE) -> None:
    """Copy the table's pretraining config to where the size's pretrain step reads it (pretrain_config)."""
    source, target = Path(preset(size)["pretrain_config"]), Path(pretrain_config(size))
    if not source.is_file():
        raise SystemExit(f"Size {size}: pretrain_config {source} does not exist; name a file under configs/ (scripts/presets.py).")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    shutil.copyfile(source, partial)
    partial.replace(target)
    print(f"{source} -> {target}")


@app.command()
def pretrain(size: str = SIZE, gpu_id: int = GPU) -> None:
    commands = pretrain_commands(size, gpu_id)
    fresh(elmo_dir(size))
    for args in commands:
        sh(args)


@app.command()
def adapt(size: str = SIZE, gpu_id: int = GPU,
          elmo: Optional[str] = typer.Option(None, "--elmo", help="biLM folder to adapt; default training/SIZE/elmo")) -> None:
    commands = adapt_commands(size, elmo, gpu_id)
    for path in (adapted_dir(size, frozen=True), adapted_dir(size)):
        fresh(path)
    for args in commands:
        sh(args)


def start_training(size: str, run: Run) -> None:
    """A training owns its folder: what an earlier or interrupted run left there is removed first."""
    fresh(pipeline_dir(size, *run))
    Path(pipeline_dir(size, *run)).mkdir(parents=True)


def finish_training(size: str, run: Run, commands: List[List[str]], seconds: float) -> None:
    """DIR/train_summary.json from the training's evaluation log and the settings it ran with: what `evaluate`
    puts into the metrics file, so that the report can say how long each side trained and what stopped it."""
    train_args = commands[-1]
    overrides = train_args[train_args.index("--output"):]
    summary = train_summary(Path(train_log(size, *run)), read_config_training(train_config(size, *run), overrides), seconds)
    Path(train_summary_file(size, *run)).write_text(json.dumps(summary, indent=2) + "\n")
    print(f"{run_name(*run)}: best dev score {summary['best_score']:.4f} at step {summary['best_step']} (epoch "
          f"{summary['best_epoch']}); stopped at step {summary['last_step']} by {summary['stopped_by']} after {seconds:.0f}s",
          flush=True)


def add_training_summary(size: str, run: Run) -> None:
    """The training's steps and time beside the test scores: one file per pipeline for the report."""
    out = Path(metrics_file(size, *run))
    metrics = json.loads(out.read_text())
    metrics["training"] = json.loads(Path(train_summary_file(size, *run)).read_text())
    out.write_text(json.dumps(metrics, indent=2) + "\n")


@app.command()
def train(task: str = typer.Argument(..., help="ner, textcat or sentiment"),
          features: str = typer.Argument(..., help="elmo, tok2vec, stock (spaCy's init config: ner 10, sentiment 10 and 100) or unadapted (ner on the biLM before adaptation)"),
          fraction: str = typer.Argument(..., help="10, 25 or 100 (% of the training set; textcat: 100; sentiment: 10 or 100)"),
          size: str = SIZE, gpu_id: int = GPU, seed: int = SEED,
          elmo: Optional[str] = typer.Option(None, "--elmo", help="biLM folder (options.json + weights.hdf5); default the run's (bilm_dir: training/SIZE/elmo, or elmo_adapted for ner)")) -> None:
    # The configs' listeners take their width (2 x projection_dim) from the elmo pipe: nothing to read here.
    commands = train_commands(task, features, fraction, size, gpu_id, elmo=elmo, seed=seed)
    run = (task, features, fraction, seed)
    start_training(size, run)
    start = time.perf_counter()
    for args in commands:
        sh(args)
    finish_training(size, run, commands, time.perf_counter() - start)


@app.command("train-all")
def train_all(size: str = SIZE, gpu_id: int = GPU,
              elmo: Optional[str] = typer.Option(None, "--elmo", help="the pretrained biLM (default training/SIZE/elmo): what textcat, sentiment and ner before adaptation read (ner's ELMo side reads its adapted biLM)"),
              jobs: Optional[int] = JOBS) -> None:
    """Every pipeline the size trains, as a queue with two slots on CPU, longest first (see the module's docstring)."""
    commands = train_all_commands(size, gpu_id, elmo)
    fresh(pipelines_dir(size))  # the step owns the folder: no pipeline of an earlier table stays in it
    for run in commands:
        start_training(size, run)
    results = run_side_by_side([Job(run_name(*run), argvs) for run, argvs in commands.items()], parallel_jobs(jobs, gpu_id))
    for run in commands:  # every training that succeeded keeps its summary, even when another failed
        if results[run_name(*run)].ok:
            finish_training(size, run, commands[run], results[run_name(*run)].seconds)
    require_success(results)


@app.command()
def evaluate(task: str = typer.Argument(...), features: str = typer.Argument(...), fraction: str = typer.Argument(...),
             size: str = SIZE, gpu_id: int = GPU, seed: int = SEED) -> None:
    commands = evaluate_commands(task, features, fraction, size, gpu_id, seed=seed)
    Path(scores_dir(size)).mkdir(parents=True, exist_ok=True)
    for args in commands:
        sh(args)
    add_training_summary(size, (task, features, fraction, seed))


@app.command("evaluate-all")
def evaluate_all(size: str = SIZE, gpu_id: int = GPU, jobs: Optional[int] = JOBS) -> None:
    """Every pipeline the size trains on its test set, queued as train-all trains them."""
    commands = evaluate_all_commands(size, gpu_id)
    fresh(scores_dir(size))
    Path(scores_dir(size)).mkdir(parents=True)
    results = run_side_by_side([Job(run_name(*run), argvs) for run, argvs in commands.items()], parallel_jobs(jobs, gpu_id))
    for run in commands:
        if results[run_name(*run)].ok:
            add_training_summary(size, run)
    require_success(results)


@app.command()
def wheel() -> None:
    fresh(WHEEL_DIR)
    for args in wheel_commands():
        sh(args)


@app.command()
def package(size: str = SIZE, name: str = typer.Option(..., "--name"), version: str = typer.Option(..., "--version")) -> None:
    commands = package_commands(size, name, version)
    fresh(f"packages/{size}")
    Path(f"packages/{size}").mkdir(parents=True)
    for args in commands:
        sh(args)
    wheels = sorted(str(p) for p in [*Path(WHEEL_DIR).glob("*.whl"), *Path(f"packages/{size}").rglob("*.whl")])
    print(f"\nInstall with: pip install {' '.join(wheels)}", flush=True)


if __name__ == "__main__":
    app()
