"""metrics/*.json (from `spacy evaluate`) -> metrics/results.md (table) and metrics/results.png (chart)."""
import json
import platform
import time
from pathlib import Path
from typing import Annotated

import typer


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


def main(metrics_dir: Path = typer.Argument(Path("metrics")), size: str = typer.Option("demo", "--size"),
         elmo_dir: Path = typer.Option(Path("training/elmo"), "--elmo-dir"),
         # Annotated, so a direct call (tests, bench/gpu_demo.py) gets plain defaults, not typer's OptionInfo
         fractions: Annotated[str, typer.Option("--fractions", help="ner training fractions (rows and chart points)")] = "10,25,100",
         textcat: Annotated[bool, typer.Option("--textcat/--no-textcat", help="textcat rows and panel (the GPU demo has none)")] = True) -> None:
    ner_fractions = [f.strip() for f in fractions.split(",") if f.strip()]
    rows = []
    for fraction in ner_fractions:
        elmo, base = load(metrics_dir, f"ner_elmo_{fraction}"), load(metrics_dir, f"ner_tok2vec_{fraction}")
        rows.append((f"ner, {fraction}% of train (F1)", elmo.get("ents_f"), base.get("ents_f")))
    elmo, base = load(metrics_dir, "textcat_elmo_100"), load(metrics_dir, "textcat_tok2vec_100")
    if textcat:
        rows.append(("textcat (macro F1)", elmo.get("cats_macro_f"), base.get("cats_macro_f")))
        rows.append(("textcat (accuracy)", elmo.get("cats_micro_f"), base.get("cats_micro_f")))

    def pct(value):
        return "n/a" if value is None else f"{100 * value:.2f}"

    lines = [
        f"Size preset `{size}`, {time.strftime('%Y-%m-%d')}, {platform.machine()} {platform.system()}, "
        "test sets: CoNLL-2003 test (ner)" + (", BBC News held-out 20% (textcat)." if textcat else "."),
        "",
        bilm_line(elmo_dir),
        "",
        "| task | ELMo features | tok2vec baseline | difference |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, e, b in rows:
        diff = "n/a" if e is None or b is None else f"{100 * (e - b):+.2f}"
        lines.append(f"| {name} | {pct(e)} | {pct(b)} | {diff} |")
    (metrics_dir / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install 'spacy-elmo[plot]'): no chart written.")
        return
    if textcat:
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    else:
        fig, ax1 = plt.subplots(1, 1, figsize=(5, 4))
    fractions = [int(f) for f in ner_fractions]
    for label, prefix in (("ELMo", "ner_elmo"), ("tok2vec", "ner_tok2vec")):
        ys = [load(metrics_dir, f"{prefix}_{f}").get("ents_f") for f in fractions]
        ax1.plot(fractions, [None if y is None else 100 * y for y in ys], marker="o", label=label)
    ax1.set(xscale="log", xticks=fractions, xticklabels=[f"{f}%" for f in fractions], xlabel="CoNLL-2003 training data",
            ylabel="test F1", title="ner learning curve")
    ax1.legend()
    if textcat:
        values = [(elmo.get("cats_macro_f") or 0) * 100, (base.get("cats_macro_f") or 0) * 100]
        ax2.bar(["ELMo", "tok2vec"], values, color=["C0", "C1"])
        ax2.set(ylabel="test macro F1", title="textcat (BBC News)")
    fig.tight_layout()
    fig.savefig(metrics_dir / "results.png", dpi=100)
    print(f"wrote {metrics_dir / 'results.md'} and {metrics_dir / 'results.png'}")


if __name__ == "__main__":
    typer.run(main)
