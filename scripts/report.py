"""metrics/*.json (from `spacy evaluate`, with the training summary scripts/run.py adds) -> metrics/results.md
(table) and metrics/results.png (chart). Sentiment scores are the mean over the seeds of the size's preset."""
import json
import platform
import sys
import time
from pathlib import Path
from typing import Annotated, Dict, List, Optional, Tuple

import typer

sys.path.insert(0, str(Path(__file__).parent))
from presets import PRESETS  # noqa: E402
from run import run_name  # noqa: E402  (the metrics files are named as scripts/run.py names the runs)


def load(metrics_dir: Path, name: str) -> dict:
    path = metrics_dir / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else {}


def bilm_line(elmo_dir: Path) -> str:
    """One line on the pretrained biLM from its metrics.json (written by `python -m spacy_elmo pretrain`)."""
    path = elmo_dir / "metrics.json"
    if not path.exists():
        return f"biLM: no {path}."
    m = json.loads(path.read_text())
    dev = m.get("dev") or {}
    return (f"biLM ({elmo_dir}): {m.get('step')} steps, {m.get('train_tokens', 0):,} training tokens in "
            f"{m.get('wall_seconds', 0) / 60:.1f} min; dev perplexity {dev.get('perplexity', float('nan')):.1f} "
            f"(forward {dev.get('forward_perplexity', float('nan')):.1f}, backward {dev.get('backward_perplexity', float('nan')):.1f}).")


def adaptation_line(size_dir: Path) -> Optional[str]:
    """The adaptation step's two dev perplexities on held-out CoNLL-2003 training text (scripts/run.py adapt),
    or None where the size has none."""
    before, after = (size_dir / name / "metrics.json" for name in ("elmo_adapt_frozen", "elmo_adapted"))
    if not (before.exists() and after.exists()):
        return None
    b, a = (json.loads(path.read_text()) for path in (before, after))
    return (f"Adapted to CoNLL-2003's training text (`pretrain --init-from`, {a.get('train_tokens', 0):,} tokens): dev perplexity "
            f"on held-out CoNLL training sentences {b['dev']['perplexity']:.1f} with the biLM frozen (softmax trained alone, "
            f"same budget) -> {a['dev']['perplexity']:.1f} adapted.")


def mean(values: List[Optional[float]]) -> Optional[float]:
    """The mean of the scores, None if any is missing (a mean over fewer seeds than listed would mislead)."""
    return None if not values or any(v is None for v in values) else sum(values) / len(values)  # type: ignore[misc]


def pct(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}"


def diff(e: Optional[float], b: Optional[float]) -> str:
    return "n/a" if e is None or b is None else f"{100 * (e - b):+.2f}"


def steps_cell(metrics: dict) -> str:
    """'best 450 / last 650 (patience), 82 s' from the training summary scripts/run.py adds to the metrics."""
    t = metrics.get("training")
    if not t:
        return "n/a"
    return f"{t['best_step']} / {t['last_step']} ({t['stopped_by']}), {t['train_seconds']:.0f} s"


def sentiment_runs(size: str) -> Tuple[Dict[str, List[int]], List[str]]:
    """The seeds the size's preset trains per sentiment training set, and with which features; none for a size
    without a preset (bench/gpu_demo.py's tables, which have no sentiment). Only these files are read, so a
    metrics file left by an earlier preset is never reported."""
    if size not in PRESETS:
        return {}, []
    return PRESETS[size]["sentiment_seeds"], list(PRESETS[size].get("sentiment_features", ["elmo", "tok2vec"]))


def main(metrics_dir: Path = typer.Argument(Path("metrics")), size: str = typer.Option("demo", "--size"),
         elmo_dir: Path = typer.Option(Path("training/elmo"), "--elmo-dir"),
         # Annotated, so a direct call (tests, bench/gpu_demo.py) gets plain defaults, not typer's OptionInfo
         fractions: Annotated[str, typer.Option("--fractions", help="ner training fractions (rows and chart points)")] = "10,25,100",
         textcat: Annotated[bool, typer.Option("--textcat/--no-textcat", help="textcat rows and panel (the GPU demo has none)")] = True,
         training_dir: Annotated[Path, typer.Option("--training-dir", help="where run.py writes the size's trainings (the adaptation runs)")] = Path("training")) -> None:
    ner_fractions = [f.strip() for f in fractions.split(",") if f.strip()]
    all_seeds, sentiment_features = sentiment_runs(size)
    seeds = {fraction: list(s) for fraction, s in all_seeds.items() if s}

    def sentiment_metrics(features: str, fraction: str, seed: int) -> dict:
        return load(metrics_dir, run_name("sentiment", features, fraction, seed)) if features in sentiment_features else {}

    rows = []
    timed = []  # (label, elmo metrics, baseline metrics): the training steps table
    for fraction in ner_fractions:
        elmo, base = load(metrics_dir, f"ner_elmo_{fraction}"), load(metrics_dir, f"ner_tok2vec_{fraction}")
        rows.append((f"ner, {fraction}% of train (F1)", elmo.get("ents_f"), base.get("ents_f")))
        timed.append((f"ner, {fraction}%", elmo, base))
    elmo, base = load(metrics_dir, "textcat_elmo_100"), load(metrics_dir, "textcat_tok2vec_100")
    if textcat:
        rows.append(("textcat (macro F1)", elmo.get("cats_macro_f"), base.get("cats_macro_f")))
        rows.append(("textcat (accuracy)", elmo.get("cats_micro_f"), base.get("cats_micro_f")))
        timed.append(("textcat", elmo, base))
    # sentiment: accuracy (micro F of an exclusive textcat) per seed, and its mean over the seeds
    per_seed = []
    sentiment_means: Dict[str, Tuple[Optional[float], Optional[float]]] = {}
    for fraction, fraction_seeds in seeds.items():
        scores = {}
        for features in ("elmo", "tok2vec"):
            found = [sentiment_metrics(features, fraction, seed) for seed in fraction_seeds]
            scores[features] = [m.get("cats_micro_f") for m in found]
            for seed, m in zip(fraction_seeds, found):
                if features == "elmo":
                    timed.append((f"sentiment, {fraction}%" + (f", seed {seed}" if len(fraction_seeds) > 1 else ""), m,
                                  sentiment_metrics("tok2vec", fraction, seed)))
        e, b = mean(scores["elmo"]), mean(scores["tok2vec"])
        sentiment_means[fraction] = (e, b)
        n = len(fraction_seeds)
        rows.append((f"sentiment, {fraction}% of train (accuracy{f', mean of {n} seeds' if n > 1 else ''})", e, b))
        if n > 1:
            ahead = sum(1 for x, y in zip(scores["elmo"], scores["tok2vec"]) if x is not None and y is not None and x > y)
            per_seed.append((fraction, fraction_seeds, scores["elmo"], scores["tok2vec"], ahead))
    stock = load(metrics_dir, "ner_stock_10") if seeds else {}
    adapted_fractions = [f for f in ner_fractions if load(metrics_dir, run_name("ner", "adapted", f))]
    for fraction in adapted_fractions:
        adapted, base = load(metrics_dir, run_name("ner", "adapted", fraction)), load(metrics_dir, run_name("ner", "tok2vec", fraction))
        rows.append((f"ner, {fraction}% of train, biLM adapted to CoNLL text (F1)", adapted.get("ents_f"), base.get("ents_f")))
        timed.append((f"ner, {fraction}%, adapted biLM", adapted, base))
    adaptation = adaptation_line(training_dir / size) if adapted_fractions else None

    test_sets = ["CoNLL-2003 test (ner)"]
    if textcat:
        test_sets.append("BBC News held-out 20% (textcat)")
    if seeds:
        test_sets.append("Rotten Tomatoes snippets of held-out movies (sentiment, POS/NEG)")
    lines = [
        f"Size preset `{size}`, {time.strftime('%Y-%m-%d')}, {platform.machine()} {platform.system()}, "
        f"test sets: {', '.join(test_sets)}.",
        "",
        bilm_line(elmo_dir),
        *([adaptation] if adaptation else []),
        "",
        "| task | ELMo features | tok2vec baseline | difference |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, e, b in rows:
        lines.append(f"| {name} | {pct(e)} | {pct(b)} | {diff(e, b)} |")
    if per_seed:
        lines += ["", "| sentiment accuracy per seed | seeds | ELMo features | tok2vec baseline | ELMo ahead |",
                  "| --- | --- | --- | --- | ---: |"]
        for fraction, fraction_seeds, e, b, ahead in per_seed:
            lines.append(f"| {fraction}% of train | {' / '.join(map(str, fraction_seeds))} | {' / '.join(map(pct, e))} | "
                         f"{' / '.join(map(pct, b))} | {ahead} of {len(fraction_seeds)} |")
    if any(m.get("training") for _, e, b in timed for m in (e, b)):
        lines += ["", "Training until the dev score stops improving: step of the best dev score (model-best) / last step, "
                  "what stopped it (patience: no better dev score for [training] patience steps; max_steps: the preset's cap), "
                  "and the training's wall time.", "",
                  "| pipeline | ELMo features | tok2vec baseline |", "| --- | --- | --- |"]
        for label, e, b in timed:
            lines.append(f"| {label} | {steps_cell(e)} | {steps_cell(b)} |")
    if stock:
        ours = load(metrics_dir, "ner_tok2vec_10")
        lines += ["", "The tok2vec baseline against spaCy's stock `spacy init config --pipeline ner --optimize efficiency` "
                  "(its own tok2vec component with 4 layers, its optimizer schedule; the size's patience and cap), "
                  "same CoNLL-2003 10% data:", "",
                  "| ner, 10% of train | test F1 | best / last step (stopped by), time |", "| --- | ---: | --- |",
                  f"| tok2vec baseline (configs/ner_tok2vec.cfg) | {pct(ours.get('ents_f'))} | {steps_cell(ours)} |",
                  f"| spaCy stock efficiency config | {pct(stock.get('ents_f'))} | {steps_cell(stock)} |",
                  f"| baseline minus stock | {diff(ours.get('ents_f'), stock.get('ents_f'))} | |"]
    (metrics_dir / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install 'spacy-elmo[plot]'): no chart written.")
        return
    panels = 1 + int(textcat) + int(bool(sentiment_means))
    fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 4))
    axes = list(axes) if panels > 1 else [axes]
    ax1 = axes.pop(0)
    ner_points = [int(f) for f in ner_fractions]
    for label, prefix in (("ELMo", "ner_elmo"), ("tok2vec", "ner_tok2vec")):
        ys = [load(metrics_dir, f"{prefix}_{f}").get("ents_f") for f in ner_points]
        ax1.plot(ner_points, [None if y is None else 100 * y for y in ys], marker="o", label=label)
    ax1.set(xscale="log", xticks=ner_points, xticklabels=[f"{f}%" for f in ner_points], xlabel="CoNLL-2003 training data",
            ylabel="test F1", title="ner learning curve")
    ax1.legend()
    if textcat:
        ax2 = axes.pop(0)
        values = [(elmo.get("cats_macro_f") or 0) * 100, (base.get("cats_macro_f") or 0) * 100]
        ax2.bar(["ELMo", "tok2vec"], values, color=["C0", "C1"])
        ax2.set(ylabel="test macro F1", title="textcat (BBC News)")
    if sentiment_means:
        ax3 = axes.pop(0)
        points = sorted(int(f) for f in sentiment_means)
        for i, label in enumerate(("ELMo", "tok2vec")):
            ys = [sentiment_means[str(f)][i] for f in points]
            ax3.plot(points, [None if y is None else 100 * y for y in ys], marker="o", label=label)
        ax3.set(xscale="log", xticks=points, xticklabels=[f"{f}%" for f in points], xlabel="Rotten Tomatoes training snippets",
                ylabel="test accuracy (mean over seeds)", title="sentiment learning curve")
        ax3.legend()
    fig.tight_layout()
    fig.savefig(metrics_dir / "results.png", dpi=100)
    print(f"wrote {metrics_dir / 'results.md'} and {metrics_dir / 'results.png'}")


if __name__ == "__main__":
    typer.run(main)
