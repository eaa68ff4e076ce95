"""Issue 10, "more and better text": what each extra English source (lab/text_sources.py) does to the biLM's
dev perplexity on news and to ner at 10% of CoNLL-2003.

Every biLM is configs/pretrain_small.cfg trained on an EQUAL token budget (--budget training tokens,
training.max_tokens; seed 0, the same threads and precision), with the SAME output vocabulary (the news training
text's top 30,000 tokens, [vocab] max_size / min_count of the config: perplexities over different target sets
would not compare) and the same dev file (the demo's held-out news, corpus/demo/lm/dev.txt, first 500 sentences):

- `news`: the first BUDGET words of the news training text (corpus/demo/lm/train.txt, article order), sentences shuffled;
- `news+SOURCE`: the first BUDGET/2 words of the same news text + BUDGET/2 words of SOURCE.txt (a seeded random
  sample of its sentences, cycling through it again when it is smaller), the two shuffled together.

Then ner at 10% of CoNLL-2003 with the demo's command (`scripts/run.py train ner elmo 10 --size demo`'s spacy
train: configs/ner_elmo.cfg, 10% subset, patience 500, eval every 250, cap 1,500, seed 0) on the news biLM, on the
--ner-top mixes with the lowest perplexity and on each --ner-also source, evaluated on the CoNLL-2003 test set.
After every step WORK/results.json and --metrics are rewritten and the table is printed; a finished run is
skipped on a rerun (same settings), so an interrupted measurement continues where it stopped.

    python lab/text_sources_study.py speed --steps 60                      # tokens/s of this machine: size the budget
    python lab/text_sources_study.py run --budget 700000 --ner-also wiki   # the measurement
    python lab/text_sources_study.py table                                  # the table of what was measured so far
"""
import json
import os
import random
import shlex
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import typer

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]  # this checkout's spacy_elmo and scripts/run.py (the subprocesses
# run with cwd=ROOT, so they import this checkout's spacy_elmo too)
PY = sys.executable
app = typer.Typer(add_completion=False, no_args_is_help=True)

SOURCES = ["parliament", "brown", "wordnet", "kjv", "linuxdoc", "wiki"]
CONFIG = "configs/pretrain_small.cfg"
NEWS_DIR = ROOT / "corpus" / "demo" / "lm"
TEXT_DIR = ROOT / "corpus" / "text_sources"
WORK = ROOT / "training" / "text_sources"
METRICS = ROOT / "metrics" / "text_sources.json"


def write_json(path: Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2) + "\n")


def write_lines(path: Path, lines: List[str]) -> None:
    write_text(path, "".join(line + "\n" for line in lines))


def write_text(path: Path, text: str) -> None:
    """Through the project's one temp-file-and-rename (spacy_elmo.bilm.atomic)."""
    from spacy_elmo.bilm.atomic import atomic_write

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def sh(args: List[str], log: Optional[Path] = None) -> float:
    print(f"\n$ {shlex.join(args)}", flush=True)
    start = time.perf_counter()
    if log is None:
        code = subprocess.run(args, cwd=ROOT).returncode
    else:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("w", encoding="utf-8") as out:
            code = subprocess.run(args, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT).returncode
    seconds = time.perf_counter() - start
    if code != 0:
        tail = log.read_text(encoding="utf-8", errors="replace")[-3000:] if log else ""
        raise RuntimeError(f"exit code {code} after {seconds:.0f}s: {shlex.join(args)}\n{tail}")
    print(f"({seconds:.0f}s)", flush=True)
    return seconds


# ---------------------------------------------------------------------------------------------------------------
# Data: the shared vocabulary and the training mixes
# ---------------------------------------------------------------------------------------------------------------


def read_lines(path: Path) -> List[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def first_words(lines: List[str], n_words: int) -> List[str]:
    out, words = [], 0
    for line in lines:
        if words >= n_words:
            break
        out.append(line)
        words += len(line.split())
    if words < n_words:
        raise SystemExit(f"only {words:,} words where {n_words:,} are needed")
    return out


def sample_words(lines: List[str], n_words: int, seed: int) -> Tuple[List[str], int]:
    """(a seeded random sample of lines holding >= n_words words, passes over the source it took)."""
    rng = random.Random(seed)
    out, words, passes = [], 0, 0
    while words < n_words:
        order = list(range(len(lines)))
        rng.shuffle(order)
        passes += 1
        for i in order:
            out.append(lines[i])
            words += len(lines[i].split())
            if words >= n_words:
                break
    return out, passes


def build_vocab(news_train: Path, target: Path) -> Dict[str, Any]:
    """The news training text's vocabulary, as `pretrain` would build it from that file with the config's
    [vocab] settings: every run predicts the same targets."""
    from spacy_elmo.pretrain.config import load_config
    from spacy_elmo.pretrain.vocab import Vocab

    settings = load_config(ROOT / CONFIG)["vocab"]
    vocab = Vocab.build((line.split() for line in read_lines(news_train)), max_size=int(settings["max_size"]),
                        min_count=int(settings["min_count"]))
    target.parent.mkdir(parents=True, exist_ok=True)
    vocab.to_file(target)
    return {"path": str(target), "size": len(vocab), "sha256": vocab.sha256()}


def build_mix(name: str, news_lines: List[str], budget: int, text_dir: Path, seed: int, target: Path) -> Dict[str, Any]:
    """news: BUDGET news words; news+SOURCE: BUDGET/2 of each. A 1% margin so one pass covers the budget."""
    want = int(budget * 1.01)
    if name == "news":
        news, extra, passes = first_words(news_lines, want), [], 0
    else:
        news = first_words(news_lines, want // 2)
        extra, passes = sample_words(read_lines(text_dir / f"{name}.txt"), want - want // 2, seed)
    lines = news + extra
    random.Random(seed).shuffle(lines)
    write_lines(target, lines)
    return {"news_words": sum(len(s.split()) for s in news), "source_words": sum(len(s.split()) for s in extra),
            "source_passes": passes, "sentences": len(lines)}


# ---------------------------------------------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------------------------------------------


def pretrain_args(train: Path, dev: Path, vocab: Path, output: Path, budget: int, threads: int, precision: str,
                  seed: int, extra: List[str]) -> List[str]:
    return [PY, "-m", "spacy_elmo", "pretrain", CONFIG, "--output", str(output), "--paths.train", str(train),
            "--paths.dev", str(dev), "--paths.vocab", str(vocab), "--training.max_tokens", str(budget),
            "--training.max_steps", "0", "--training.max_epochs", "0", "--training.max_seconds", "0",
            "--training.threads", str(threads), "--training.precision", precision, "--training.seed", str(seed),
            "--training.eval_at_start", "false", *extra]


def ner_args(elmo: Path, output: Path) -> List[str]:
    """The demo's `train ner elmo 10` spacy-train command (scripts/run.py), with its output moved to `output`."""
    import run as project_run

    (args,) = project_run.train_commands("ner", "elmo", "10", "demo", elmo=str(elmo))
    args = list(args)
    args[args.index("--output") + 1] = str(output)
    args[args.index("--training.logger.output_file") + 1] = str(output / "train_log.jsonl")
    return args


def ner_summary(output: Path, args: List[str], seconds: float) -> Dict[str, Any]:
    import run as project_run

    overrides = args[args.index("--output"):]
    return project_run.train_summary(output / "train_log.jsonl",
                                     project_run.read_config_training(project_run.train_config("demo", "ner", "elmo", "10"),
                                                                      overrides), seconds)


def results_table(results: Dict[str, Any]) -> str:
    runs = results.get("runs", {})
    base = runs.get("news", {}).get("pretrain", {}).get("perplexity")
    base_f = runs.get("news", {}).get("ner", {}).get("test_f")
    rows = ["| biLM training text | dev ppl (news) | vs news-only | train tokens | tokens/s | pretrain s | ner 10% test F1 | vs news-only | ner s |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, run in runs.items():
        p, n = run.get("pretrain", {}), run.get("ner", {})
        label = "news" if name == "news" else f"news + {name}"
        ppl = p.get("perplexity")
        f = n.get("test_f")
        rows.append("| " + " | ".join([
            label,
            f"{ppl:.1f}" if ppl else p.get("status", "-"),
            f"{100 * (ppl / base - 1):+.1f}%" if ppl and base and name != "news" else "",
            f"{p['train_tokens']:,}" if "train_tokens" in p else "",
            f"{p['tokens_per_second']:,.0f}" if "tokens_per_second" in p else "",
            f"{p['seconds']:.0f}" if "seconds" in p else "",
            f"{100 * f:.2f}" if f is not None else n.get("status", "not run"),
            f"{100 * (f - base_f):+.2f}" if f is not None and base_f is not None and name != "news" else "",
            f"{n['seconds']:.0f}" if "seconds" in n else "",
        ]) + " |")
    return "\n".join(rows)


def save(results: Dict[str, Any], work: Path, metrics: Path) -> None:
    results["updated"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    write_json(work / "results.json", results)
    write_json(metrics, results)


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


@app.command()
def speed(steps: int = typer.Option(60, help="Training steps (3,000-token batches)"),
          threads: int = typer.Option(2), precision: str = typer.Option("bf16"),
          news_dir: Path = typer.Option(NEWS_DIR), work: Path = typer.Option(WORK / "speed")) -> None:
    """Tokens/s of one short pretraining run on the news (to size --budget)."""
    vocab = work / "news_vocab.txt"
    build_vocab(news_dir / "train.txt", vocab)
    output = work / f"elmo_{precision}"
    shutil.rmtree(output, ignore_errors=True)
    # the budget in tokens of `steps` full batches; no evaluation or checkpoint falls inside so few steps
    seconds = sh(pretrain_args(news_dir / "train.txt", news_dir / "dev.txt", vocab, output, steps * 3000, threads,
                               precision, 0, []), log=work / f"speed_{precision}.log")
    m = json.loads((output / "metrics.json").read_text())
    print(f"{precision}, {threads} threads: {m['train_tokens']:,} tokens in {m['wall_seconds']:.0f}s of training "
          f"({m['tokens_per_second']:,.0f} tokens/s), {seconds:.0f}s with start-up and the final evaluation")


@app.command("run")
def run_all(
    budget: int = typer.Option(..., help="Training tokens of every biLM (training.max_tokens)"),
    sources: str = typer.Option(",".join(SOURCES), help="Comma-separated sources (lab/text_sources.py's)"),
    ner_top: int = typer.Option(2, help="ner for this many mixes with the lowest dev perplexity"),
    ner_also: str = typer.Option("", help="Comma-separated sources trained for ner whatever their perplexity"),
    threads: int = typer.Option(2), precision: str = typer.Option("bf16"), seed: int = typer.Option(0),
    news_dir: Path = typer.Option(NEWS_DIR), text_dir: Path = typer.Option(TEXT_DIR),
    work: Path = typer.Option(WORK), metrics: Path = typer.Option(METRICS),
    deadline: Optional[str] = typer.Option(None, help="UTC HH:MM: a ner run that would not end by then is dropped"),
    ner_estimate: float = typer.Option(420.0, help="Seconds a ner run is assumed to take until one was measured"),
    ner: bool = typer.Option(True, help="--no-ner: pretraining only"),
) -> None:
    names = ["news"] + [s.strip() for s in sources.split(",") if s.strip()]
    unknown = [n for n in names[1:] if n not in SOURCES]
    if unknown:
        raise typer.BadParameter(f"unknown source(s) {unknown}")
    work.mkdir(parents=True, exist_ok=True)
    settings = {"budget": budget, "threads": threads, "precision": precision, "seed": seed, "config": CONFIG,
                "news_train": str(news_dir / "train.txt"), "dev": str(news_dir / "dev.txt")}
    old = json.loads((work / "results.json").read_text()) if (work / "results.json").exists() else {}
    results: Dict[str, Any] = old if old.get("settings") == settings else {}
    results.update({"settings": settings, "commit": git_commit(), "machine": machine()})
    results.setdefault("runs", {})
    start = time.time()
    end_by = None
    if deadline:
        hh, mm = (int(x) for x in deadline.split(":"))
        now = datetime.now(timezone.utc)
        end_by = now.replace(hour=hh, minute=mm, second=0, microsecond=0).timestamp()
        if end_by < now.timestamp():
            end_by += 86400
    vocab = work / "news_vocab.txt"
    results["vocab"] = build_vocab(news_dir / "train.txt", vocab)
    news_lines = read_lines(news_dir / "train.txt")
    # --- pretraining: every mix, same budget
    for name in names:
        run = results["runs"].setdefault(name, {})
        if run.get("pretrain", {}).get("perplexity"):
            print(f"{name}: pretrained already (dev perplexity {run['pretrain']['perplexity']:.1f})")
            continue
        mix_dir, output = work / f"mix_{name}", work / f"elmo_{name}"
        run["mix"] = build_mix(name, news_lines, budget, text_dir, seed, mix_dir / "train.txt")
        shutil.rmtree(output, ignore_errors=True)
        args = pretrain_args(mix_dir / "train.txt", news_dir / "dev.txt", vocab, output, budget, threads, precision, seed, [])
        try:
            seconds = sh(args, log=work / f"pretrain_{name}.log")
        except RuntimeError as error:
            run["pretrain"] = {"status": "failed", "error": str(error)[-1500:]}
            save(results, work, metrics)
            print(error)
            continue
        m = json.loads((output / "metrics.json").read_text())
        dev = m.get("best_dev") or m["dev"]
        run["pretrain"] = {"perplexity": dev["perplexity"], "forward_perplexity": dev["forward_perplexity"],
                           "backward_perplexity": dev["backward_perplexity"], "best_step": dev["step"],
                           "final_perplexity": m["dev"]["perplexity"], "steps": m["step"],
                           "train_tokens": m["train_tokens"], "tokens_per_second": m["tokens_per_second"],
                           "train_seconds": m["wall_seconds"], "seconds": round(seconds, 1),
                           "command": shlex.join(args)}
        save(results, work, metrics)
        print(results_table(results), flush=True)
    # --- ner: news, the best --ner-top mixes, and --ner-also
    ranked = sorted((n for n in names[1:] if results["runs"][n].get("pretrain", {}).get("perplexity")),
                    key=lambda n: results["runs"][n]["pretrain"]["perplexity"])
    chosen = ["news"] + ranked[:ner_top] if ner else []
    chosen += [s.strip() for s in ner_also.split(",") if ner and s.strip() and s.strip() not in chosen and s.strip() in names]
    results["ner_order"] = chosen
    measured = [r["ner"]["seconds"] for r in results["runs"].values() if r.get("ner", {}).get("seconds")]
    for name in chosen:
        run = results["runs"][name]
        if run.get("ner", {}).get("test_f") is not None:
            continue
        if not run.get("pretrain", {}).get("perplexity"):
            run["ner"] = {"status": "no biLM"}
            continue
        estimate = max(measured) if measured else ner_estimate
        if end_by is not None and time.time() + estimate > end_by:
            run["ner"] = {"status": f"dropped (deadline {deadline} UTC)"}
            save(results, work, metrics)
            continue
        output = work / f"ner_{name}"
        shutil.rmtree(output, ignore_errors=True)
        output.mkdir(parents=True)
        args = ner_args(work / f"elmo_{name}", output)
        try:
            seconds = sh(args, log=work / f"ner_{name}.log")
            summary = ner_summary(output, args, seconds)
            test = output / "test.json"
            eval_args = [PY, "-m", "spacy", "evaluate", str(output / "model-best"),
                         "corpus/demo/conll2003/test.spacy", "--output", str(test)]
            eval_seconds = sh(eval_args, log=work / f"ner_{name}_evaluate.log")
        except RuntimeError as error:
            run["ner"] = {"status": "failed", "error": str(error)[-1500:]}
            save(results, work, metrics)
            print(error)
            continue
        scores = json.loads(test.read_text())
        measured.append(seconds + eval_seconds)
        run["ner"] = {"test_f": scores["ents_f"], "test_p": scores["ents_p"], "test_r": scores["ents_r"],
                      "dev_f": summary["best_score"], "best_step": summary["best_step"], "last_step": summary["last_step"],
                      "stopped_by": summary["stopped_by"], "seconds": round(seconds + eval_seconds, 1),
                      "command": shlex.join(args), "evaluate": shlex.join(eval_args)}
        save(results, work, metrics)
        print(results_table(results), flush=True)
    results["seconds"] = round(time.time() - start + old.get("seconds", 0) if old.get("settings") == settings else
                               time.time() - start, 1)
    save(results, work, metrics)
    print("\n" + results_table(results))


@app.command()
def table(work: Path = typer.Option(WORK)) -> None:
    """The table of WORK/results.json."""
    print(results_table(json.loads((work / "results.json").read_text())))


def machine() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()}, {os.cpu_count()} cores"
    except OSError:
        pass
    return f"{os.cpu_count()} cores"


if __name__ == "__main__":
    app()
