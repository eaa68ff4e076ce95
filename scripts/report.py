"""metrics/*.json (from `spacy evaluate`, with the training summary scripts/run.py adds) -> metrics/results.md
(table) and metrics/results.png (chart). ner and sentiment scores are the mean over the seeds of the size's preset
(ner_seeds, sentiment_seeds, unadapted_seeds), with a per-seed table that says in how many seeds ELMo is ahead. Where
the size's ner reads the adapted biLM (presets' ner_bilm), the ner on the biLM before adaptation is compared with
tok2vec and with the adapted biLM's ner of the same seeds (what each stage gives). spaCy's stock efficiency configs
(ner at 10%; textcat on sentiment, sentiment_stock_seeds) place the baselines."""
import json
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Dict, List, Optional, Sequence, Tuple

import typer

sys.path.insert(0, str(Path(__file__).parent))
from presets import PRESETS, ner_reads_adapted_bilm as preset_reads_adapted_bilm  # noqa: E402
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


def adaptation_line(size_dir: Path) -> str:
    """The adaptation step's two dev perplexities on held-out CoNLL-2003 training text (scripts/run.py adapt)."""
    before, after = (size_dir / name / "metrics.json" for name in ("elmo_adapt_frozen", "elmo_adapted"))
    intro = "ner's ELMo features come from this biLM adapted to CoNLL-2003's training text (`pretrain --init-from`"
    if not (before.exists() and after.exists()):
        return f"{intro}; no {before} or {after})."
    b, a = (json.loads(path.read_text()) for path in (before, after))
    return (f"{intro}, {a.get('train_tokens', 0):,} tokens; textcat and sentiment read the biLM above): dev perplexity "
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


@dataclass
class SeedScores:
    """One training set's test scores per seed, ELMo and tok2vec (None: no metrics file), and their metrics."""
    label: str  # "10% of train"
    seeds: List[int]
    elmo: List[Optional[float]]
    base: List[Optional[float]]
    elmo_metrics: List[dict]
    base_metrics: List[dict]

    def means(self) -> Tuple[Optional[float], Optional[float]]:
        return mean(self.elmo), mean(self.base)

    def ahead(self) -> int:
        """The seeds in which ELMo scores above tok2vec (a missing score counts as not ahead)."""
        return sum(1 for e, b in zip(self.elmo, self.base) if e is not None and b is not None and e > b)


def seed_scores(metrics_dir: Path, task: str, fraction: str, seeds: Sequence[int], key: str,
                features: Optional[Sequence[str]] = None, sides: Tuple[str, str] = ("elmo", "tok2vec"),
                label: Optional[str] = None) -> SeedScores:
    """The scores of every seed of a training set, read from the metrics files run.py names, for the two `sides`
    compared (ELMo and tok2vec; the adapted biLM against either); a side the size does not train (not in `features`,
    default both sides: ci's sentiment has no ELMo) is read as missing, so a file left by an earlier preset is
    never used."""
    trained = sides if features is None else features
    found = {f: [load(metrics_dir, run_name(task, f, fraction, seed)) if f in trained else {} for seed in seeds]
             for f in sides}
    first, second = sides
    return SeedScores(label or f"{fraction}% of train", list(seeds), [m.get(key) for m in found[first]],
                      [m.get(key) for m in found[second]], found[first], found[second])


def per_seed_table(title: str, rows: List[SeedScores]) -> List[str]:
    """Each seed's score on both sides and how many seeds ELMo wins: a mean can hide one lucky seed."""
    lines = ["", f"| {title} | seeds | ELMo features | tok2vec baseline | ELMo ahead |", "| --- | --- | --- | --- | ---: |"]
    for r in rows:
        lines.append(f"| {r.label} | {' / '.join(map(str, r.seeds))} | {' / '.join(map(pct, r.elmo))} | "
                     f"{' / '.join(map(pct, r.base))} | {r.ahead()} of {len(r.seeds)} |")
    return lines


def ner_seeds(size: str, fractions: List[str]) -> Dict[str, List[int]]:
    """The seeds the size's preset trains per ner fraction; seed 0 alone for a size without a preset
    (a caller's own tables) or a preset without ner_seeds."""
    listed = PRESETS[size].get("ner_seeds", {}) if size in PRESETS else {}
    return {fraction: list(listed.get(fraction, [0])) for fraction in fractions}


def ner_reads_adapted_bilm(size: str) -> bool:
    """Whether the size's ner comparisons train on the adapted biLM (presets' ner_bilm); a size without a preset
    (a caller's own tables) does not adapt."""
    return size in PRESETS and preset_reads_adapted_bilm(size)


def unadapted_seeds(size: str, fractions: List[str]) -> Dict[str, List[int]]:
    """The seeds of the ner runs on the biLM before adaptation per fraction, as the size's preset lists them (none
    where the size's ner does not read the adapted biLM). The report gives a row only to a fraction with at least
    one of these runs' metrics files."""
    listed = PRESETS[size].get("unadapted_seeds", {}) if ner_reads_adapted_bilm(size) else {}
    return {f: list(listed[f]) for f in fractions if listed.get(f)}


def sentiment_runs(size: str) -> Tuple[Dict[str, List[int]], List[str]]:
    """The seeds the size's preset trains per sentiment training set, and with which features; none for a size
    without a preset (a caller's own tables). Only these files are read, so a
    metrics file left by an earlier preset is never reported."""
    if size not in PRESETS:
        return {}, []
    return PRESETS[size]["sentiment_seeds"], list(PRESETS[size].get("sentiment_features", ["elmo", "tok2vec"]))


def sentiment_stock_runs(size: str) -> Dict[str, List[int]]:
    """The seeds of spaCy's stock textcat on sentiment per training set, as the size's preset lists them (none for a
    size without a preset, or without the stock comparison)."""
    listed = PRESETS[size].get("sentiment_stock_seeds", {}) if size in PRESETS else {}
    return {fraction: list(seeds) for fraction, seeds in listed.items() if seeds}


def sentiment_stock_table(metrics_dir: Path, size: str, sentiment_scores: Dict[str, SeedScores]) -> List[str]:
    """Both sentiment models against spaCy's stock `--pipeline textcat --optimize efficiency` (a bag of words) on the
    same training sets: where the comparison stands against what spaCy gives without ELMo or a tok2vec. Means over
    the stock's seeds, beside the comparison's means (the same seeds where the preset lists the same)."""
    stock_seeds = sentiment_stock_runs(size)
    if not stock_seeds:
        return []
    lines = ["", "Both sentiment models against spaCy's stock `spacy init config --pipeline textcat --optimize efficiency` "
             "(a bag of words, TextCatBOW; its own batcher and optimizer; the size's sentiment patience and cap), same data:",
             "", "| sentiment (accuracy) | ELMo features | tok2vec baseline | spaCy stock efficiency config | "
             "stock per seed | stock's best / last step (stopped by), time |", "| --- | ---: | ---: | ---: | --- | --- |"]
    for fraction, seeds in stock_seeds.items():
        stock = [load(metrics_dir, run_name("sentiment", "stock", fraction, seed)) for seed in seeds]
        scores = sentiment_scores.get(fraction)
        elmo, base = scores.means() if scores else (None, None)
        n = len(seeds)
        label = f"{fraction}% of train" + (f", mean of {n} seeds" if n > 1 else "")
        per_seed = " / ".join(f"{pct(m.get('cats_micro_f'))} (seed {seed})" for seed, m in zip(seeds, stock))
        steps = "; ".join(steps_cell(m) for m in stock)
        lines.append(f"| {label} | {pct(elmo)} | {pct(base)} | {pct(mean([m.get('cats_micro_f') for m in stock]))} | "
                     f"{per_seed} | {steps} |")
    return lines


def main(metrics_dir: Path = typer.Argument(Path("metrics")), size: str = typer.Option("demo", "--size"),
         elmo_dir: Path = typer.Option(Path("training/elmo"), "--elmo-dir"),
         # Annotated, so a direct call (tests) gets plain defaults, not typer's OptionInfo
         fractions: Annotated[str, typer.Option("--fractions", help="ner training fractions (rows and chart points)")] = "10,25,100",
         textcat: Annotated[Optional[bool], typer.Option("--textcat/--no-textcat", help="textcat rows and panel (default: whether the size trains it)")] = None,
         training_dir: Annotated[Path, typer.Option("--training-dir", help="where run.py writes the size's trainings (the adaptation runs)")] = Path("training"),
         output: Annotated[Optional[Path], typer.Option("--output", help="where results.md and results.png go (default: METRICS_DIR)")] = None) -> None:
    output = output if output is not None else metrics_dir
    output.mkdir(parents=True, exist_ok=True)
    ner_fractions = [f.strip() for f in fractions.split(",") if f.strip()]
    if textcat is None:
        textcat = size not in PRESETS or PRESETS[size]["textcat_train"] is not None
    listed = PRESETS[size]["ner_seeds"] if size in PRESETS else {}
    ner_fractions = [f for f in ner_fractions if listed.get(f, [0])]  # a fraction the size trains no seed of has no row
    all_seeds, sentiment_features = sentiment_runs(size)
    seeds = {fraction: list(s) for fraction, s in all_seeds.items() if s}

    rows = []
    timed = []  # (label, elmo metrics, baseline metrics): the training steps table

    def seeded_rows(task: str, score: str, fraction: str, scores: SeedScores) -> None:
        """The table's row (the mean where the preset lists several seeds) and each seed's training steps."""
        n = len(scores.seeds)
        rows.append((f"{task}, {fraction}% of train ({score}{f', mean of {n} seeds' if n > 1 else ''})", *scores.means()))
        for seed, e, b in zip(scores.seeds, scores.elmo_metrics, scores.base_metrics):
            timed.append((f"{task}, {fraction}%" + (f", seed {seed}" if n > 1 else ""), e, b))

    ner_scores = [seed_scores(metrics_dir, "ner", f, s, "ents_f") for f, s in ner_seeds(size, ner_fractions).items()]
    for fraction, scores in zip(ner_fractions, ner_scores):
        seeded_rows("ner", "F1", fraction, scores)
    elmo, base = load(metrics_dir, "textcat_elmo_100"), load(metrics_dir, "textcat_tok2vec_100")
    if textcat:
        rows.append(("textcat (macro F1)", elmo.get("cats_macro_f"), base.get("cats_macro_f")))
        rows.append(("textcat (accuracy)", elmo.get("cats_micro_f"), base.get("cats_micro_f")))
        timed.append(("textcat", elmo, base))
    # sentiment: accuracy (micro F of an exclusive textcat) per seed, and its mean over the seeds
    sentiment_scores = {fraction: seed_scores(metrics_dir, "sentiment", fraction, fraction_seeds, "cats_micro_f",
                                              sentiment_features) for fraction, fraction_seeds in seeds.items()}
    for fraction, scores in sentiment_scores.items():
        seeded_rows("sentiment", "accuracy", fraction, scores)
    sentiment_means = {fraction: scores.means() for fraction, scores in sentiment_scores.items()}
    stock = load(metrics_dir, "ner_stock_10") if seeds else {}
    several_ner_seeds = {f for f, s in zip(ner_fractions, ner_scores) if len(s.seeds) > 1}
    # The biLM before adaptation against the tok2vec runs of the same seeds (the table), and against the adapted
    # biLM's ner rows (the stages line: what adaptation adds to pretraining)
    unadapted_scores, stages = [], []
    for fraction, fraction_seeds in unadapted_seeds(size, ner_fractions).items():
        scores = seed_scores(metrics_dir, "ner", fraction, fraction_seeds, "ents_f", sides=("unadapted", "tok2vec"),
                             label=f"{fraction}% of train, biLM before adaptation")
        if not any(scores.elmo_metrics):  # none of the fraction's runs before adaptation was evaluated
            continue
        unadapted_scores.append(scores)
        n = len(fraction_seeds)
        seed_note = f", mean of {n} seeds" if n > 1 else (f", seed {fraction_seeds[0]}" if fraction in several_ner_seeds else "")
        rows.append((f"ner, {fraction}% of train, biLM before adaptation (F1{seed_note})", *scores.means()))
        for seed, u, b in zip(fraction_seeds, scores.elmo_metrics, scores.base_metrics):
            timed.append((f"ner, {fraction}%, biLM before adaptation" + (f", seed {seed}" if n > 1 or fraction in several_ner_seeds else ""), u, b))
        versus_before = seed_scores(metrics_dir, "ner", fraction, fraction_seeds, "ents_f", sides=("elmo", "unadapted"))
        adapted_mean, before_mean = versus_before.means()
        stages.append(f"ner at {fraction}% ({'mean of ' + str(n) + ' seeds' if n > 1 else 'seed ' + str(fraction_seeds[0])}): "
                      f"pretrained biLM {pct(before_mean)}, adapted {pct(adapted_mean)}, adaptation {diff(adapted_mean, before_mean)} F1 "
                      f"(adapted ahead in {versus_before.ahead()} of {n}), pretraining {diff(before_mean, mean(scores.base))} F1 "
                      f"over tok2vec")
    adaptation = adaptation_line(training_dir / size) if ner_reads_adapted_bilm(size) else None
    if adaptation and stages:
        adaptation += " What each stage gives, " + "; ".join(stages) + "."

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
    for title, seeded in (("ner F1 per seed", ner_scores + unadapted_scores),
                          ("sentiment accuracy per seed", list(sentiment_scores.values()))):
        several = [scores for scores in seeded if len(scores.seeds) > 1]
        if several:
            lines += per_seed_table(title, several)
    queued = size in PRESETS  # the project's workflow trains two at a time on CPU (scripts/run.py train-all)
    if any(m.get("training") for _, e, b in timed for m in (e, b)):
        lines += ["", "Training until the dev score stops improving: step of the best dev score (model-best) / last step, "
                  "what stopped it (patience: no better dev score for [training] patience steps; max_steps: the preset's cap), "
                  "and the training's wall time." + (" Every run trains beside one other, one process each (scripts/run.py "
                  "train-all, two at a time, longest first): its time is under that shared load." if queued else ""), "",
                  "| pipeline | ELMo features | tok2vec baseline |", "| --- | --- | --- |"]
        for label, e, b in timed:
            lines.append(f"| {label} | {steps_cell(e)} | {steps_cell(b)} |")
    if stock:
        ours = load(metrics_dir, "ner_tok2vec_10")
        lines += ["", "The tok2vec baseline against spaCy's stock `spacy init config --pipeline ner --optimize efficiency` "
                  "(its own tok2vec component with 4 layers, its optimizer schedule; the size's patience and cap), "
                  "same CoNLL-2003 10% data:", "",
                  "| ner, 10% of train | test F1 | best / last step (stopped by), time |", "| --- | ---: | --- |",
                  f"| tok2vec baseline (configs/ner_tok2vec.cfg{', seed 0' if '10' in several_ner_seeds else ''}) | "
                  f"{pct(ours.get('ents_f'))} | {steps_cell(ours)} |",
                  f"| spaCy stock efficiency config | {pct(stock.get('ents_f'))} | {steps_cell(stock)} |",
                  f"| baseline minus stock | {diff(ours.get('ents_f'), stock.get('ents_f'))} | |"]
    lines += sentiment_stock_table(metrics_dir, size, sentiment_scores)
    (output / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install -e '.[project]'): no chart written.")
        return
    panels = 1 + int(textcat) + int(bool(sentiment_means))
    fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 4))
    axes = list(axes) if panels > 1 else [axes]
    ax1 = axes.pop(0)
    ner_points = [int(f) for f in ner_fractions]
    for i, label in enumerate(("ELMo (adapted biLM)" if ner_reads_adapted_bilm(size) else "ELMo", "tok2vec")):
        ys = [scores.means()[i] for scores in ner_scores]
        ax1.plot(ner_points, [None if y is None else 100 * y for y in ys], marker="o", label=label)
    ax1.set(xscale="log", xticks=ner_points, xticklabels=[f"{f}%" for f in ner_points], xlabel="CoNLL-2003 training data",
            ylabel="test F1 (mean over seeds)" if several_ner_seeds else "test F1", title="ner learning curve")
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
    fig.savefig(output / "results.png", dpi=100)
    print(f"wrote {output / 'results.md'} and {output / 'results.png'}")


if __name__ == "__main__":
    typer.run(main)
