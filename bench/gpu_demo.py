"""What a real biLM does: pretrain on tens of millions of tokens on one GPU, then rerun the ner learning curve.

Two parts, because the GPU machine has no network and no package registry:

    python bench/gpu_demo.py data                     # CPU machine (`make gpu-demo-data`): fetch + prepare into .gpu/data/
    python bench/gpu_demo.py run [--device gpu]       # GPU machine (`make gpu-demo`): pretrain, ner x {10%, 100%} x {ELMo, tok2vec}
    python bench/gpu_demo.py run --device cpu --tiny  # the same steps end to end on CPU in minutes (tests/bench/test_gpu_demo.py)

`run` pretrains a biLM (configs/pretrain_gpu.cfg: bounded by max_steps and a wall-clock cap, whichever comes
first), trains ner on 10% and 100% of CoNLL-2003 with ELMo features and with the tok2vec baseline
(`spacy train`; ELMo and tok2vec at one fraction get the same step budget and evaluation frequency, so the
baseline is trained just as long; a wall-clock cap per run is only a safety against a hang, recorded when it
stops a run: SIGINT makes spaCy save model-last, model-best is kept), evaluates each on the test set
(`spacy evaluate`), and, if the internal deadline allows, seeds 1 and 2 at 10%.
`--jobs N` trains the ner runs N at a time (one queue, most steps first), for more steps per lease.
Every step runs as the subprocess a user would type (echoed), and a failing step is recorded, not fatal.
After every step it rewrites $OUT/results.json, results.md (the CPU demo's table via scripts/report.py, plus
the biLM's tokens, tokens/s and dev perplexity) and results.png; $OUT defaults to metrics/gpu_demo/.
"""
import argparse
import concurrent.futures
import contextlib
import gzip
import io
import json
import os
import platform
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
DATA = ROOT / ".gpu" / "data"
WORK = ROOT / ".gpu" / "run"
FRACTIONS = {"10": "train_10.spacy", "100": "train.spacy"}
DEV_SLICE = "dev_slice.spacy"

# Settings of the GPU run and of the CPU smoke run (--tiny). Times are seconds.
GPU_PLAN: Dict[str, Any] = {
    "pretrain_config": "configs/pretrain_gpu.cfg",
    "pretrain_seconds": 170,  # training.max_seconds: the wall-clock cap (evaluations included)
    # the step budget the cosine schedule decays over is the config's own training.max_steps
    "pretrain_extra": [],
    "lm_lines": 0,  # 0: all of the prepared text
    # ner: a constant 1,000-word batch (the CPU configs compound from 100 words, too small to keep a GPU busy)
    "ner_batch": 1000,
    # The step budget of every `spacy train`, the same for ELMo and tok2vec at one fraction (the first GPU run
    # capped each in wall-clock time instead, and the slower ELMo pipelines got half the baseline's steps).
    # Sized for the 330 s deadline from that run's rates (ELMo ~50 steps and tok2vec ~100 in 22 s, start-up
    # included; pretraining ~165 s): about 30+20 s at 10% and 40+25 s at 100%, plus 4 evaluations. Too few
    # steps for good ner (the models are undertrained): --ner-steps 10=600,100=1500 with a longer --deadline.
    "ner_steps": {"10": 100, "100": 150},
    # evaluations on the 500-sentence dev slice (model-best is the best of them)
    "ner_eval_frequency": {"10": 25, "100": 50},
    # wall-clock safety cap of each `spacy train`, start-up included: ~3x the expected time, so it only stops
    # a run that hangs or is far slower than expected; results.json and results.md say when it did
    "ner_seconds": {"10": 90, "100": 120},
    "evaluate_seconds": 120,
    "deadline": 330,  # seconds after start: optional runs (seeds 1-2) that would end later are skipped
}
TINY_PLAN: Dict[str, Any] = {
    "pretrain_config": "configs/pretrain_tiny.cfg",
    "pretrain_seconds": 60,
    "pretrain_extra": ["--training.max_steps", "12", "--training.eval_every", "6", "--training.checkpoint_every", "6", "--training.log_every", "4",
                       "--training.threads", "1"],
    "lm_lines": 2000,
    "ner_batch": 200,
    "ner_steps": {"10": 4, "100": 4},
    "ner_eval_frequency": {"10": 2, "100": 2},
    "ner_seconds": {"10": 120, "100": 120},
    "evaluate_seconds": 120,
    "deadline": 600,
}


def parse_ner_steps(text: str) -> Dict[str, int]:
    """--ner-steps: "400" (every fraction) or "10=400,100=1000"."""
    text = text.strip()
    try:
        if "=" not in text:
            return {fraction: int(text) for fraction in FRACTIONS}
        steps = {k.strip(): int(v) for k, v in (part.split("=", 1) for part in text.split(",") if part.strip())}
    except ValueError:
        raise SystemExit(f"--ner-steps {text!r}: give N or {','.join(f'{k}=N' for k in FRACTIONS)}")
    unknown = sorted(set(steps) - set(FRACTIONS))
    if unknown or any(v < 1 for v in steps.values()):
        raise SystemExit(f"--ner-steps {text!r}: fractions are {', '.join(FRACTIONS)}, steps at least 1")
    return steps


# ---- output -----------------------------------------------------------------------------------------------
class Log:
    """Prints with flush and keeps a copy in OUT/demo.log (the GPU tool returns only the output's tail). Runs side
    by side (--jobs) log through one lock, each line prefixed with its run's name."""

    def __init__(self, path: Path) -> None:
        self.file = path.open("a", encoding="utf8")
        self.lock = threading.Lock()

    def __call__(self, text: str, prefix: str = "") -> None:
        if prefix:
            text = "\n".join(prefix + line for line in text.split("\n"))
        with self.lock:
            print(text, flush=True)
            self.file.write(text + "\n")
            self.file.flush()


def _default_sigint() -> None:
    """In the child before exec: a command started in the background (nohup, `cmd &`, some job runners) inherits
    SIGINT ignored, and Python then installs no KeyboardInterrupt handler, so the cap's SIGINT would do nothing."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_logged(cmd: Sequence[str], log: Log, cap: Optional[float], env: Dict[str, str],
               prefix: str = "") -> Tuple[int, float, bool, str]:
    """Run cmd, streaming its output; at `cap` seconds send SIGINT (spaCy's train loop saves model-last in its
    `finally`), SIGKILL 30 s later. Returns (exit status, seconds, whether the cap stopped it, output)."""
    log(f"\n$ {shlex.join(str(c) for c in cmd)}" + (f"   [cap {cap:.0f}s]" if cap else ""), prefix)
    start = time.time()
    proc = subprocess.Popen([str(c) for c in cmd], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, errors="replace", start_new_session=True, preexec_fn=_default_sigint)
    capped = threading.Event()

    def stop() -> None:
        capped.set()
        log(f"[gpu_demo] wall-clock cap of {cap:.0f}s reached: SIGINT", prefix)
        try:
            os.killpg(proc.pid, signal.SIGINT)
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    timer = threading.Timer(cap, stop) if cap else None
    if timer:
        timer.daemon = True
        timer.start()
    lines: List[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.rstrip("\n")
        lines.append(line)
        log(line, prefix)
    rc = proc.wait()
    if timer:
        timer.cancel()
    seconds = time.time() - start
    log(f"({seconds:.0f}s, exit {rc})", prefix)
    return rc, seconds, capped.is_set(), "\n".join(lines[-400:])


def ner_name(features: str, fraction: str, seed: int) -> str:
    return f"ner_{features}_{fraction}" + (f"_s{seed}" if seed else "")


def fmt(value: Optional[float], scale: float = 100.0) -> str:
    return "n/a" if value is None else f"{scale * value:.2f}"


# ---- data (CPU machine) -----------------------------------------------------------------------------------
def gzip_lines(src: Path, dst: Path) -> int:
    n = 0
    with src.open(encoding="utf8") as fin, gzip.open(dst, "wt", encoding="utf8", compresslevel=9) as fout:
        for line in fin:
            fout.write(line)
            n += 1
    return n


def bbc_sentences(bbc_dir: Path, dst: Path) -> Tuple[int, int]:
    """BBC News articles (fetched for the CPU demo's textcat) as more pretraining text: one tokenised sentence a
    line. The GPU demo trains no textcat, so none of it is a test set here."""
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    texts = [" ".join(p.read_text(encoding="utf8", errors="replace").split()) for p in sorted(bbc_dir.rglob("*.txt"))]
    texts = list(dict.fromkeys(texts))  # the BBC set repeats some articles verbatim
    n_sents = n_words = 0
    with gzip.open(dst, "wt", encoding="utf8", compresslevel=9) as fout:
        for doc in nlp.pipe(texts, batch_size=64):
            for sent in doc.sents:
                tokens = [piece for token in sent for piece in token.text.split()]
                if tokens:
                    fout.write(" ".join(tokens) + "\n")
                    n_sents += 1
                    n_words += len(tokens)
    return n_sents, n_words


def dev_slice(src: Path, dst: Path, n: int) -> int:
    """Every k-th dev sentence (all documents represented): the dev set spaCy scores at each evaluation."""
    import spacy
    from spacy.tokens import DocBin

    nlp = spacy.blank("en")
    docs = list(DocBin().from_disk(src).get_docs(nlp.vocab))
    step = max(1, len(docs) // n)
    chosen = docs[::step][:n]
    DocBin(docs=chosen, store_user_data=False).to_disk(dst)
    return len(chosen)


def cmd_data(args: argparse.Namespace) -> None:
    """Fetch (cached in assets/) and prepare the GPU demo's data into .gpu/data/ with the project's own scripts."""
    out = Path(args.data)
    log = Log(Path("/dev/null"))
    env = dict(os.environ)

    def sh(cmd: List[str]) -> None:
        rc, _, _, _ = run_logged(cmd, log, None, env)
        if rc != 0:
            raise SystemExit(f"failed ({rc}): {shlex.join(cmd)}")

    sh([PY, "scripts/fetch_assets.py", "assets"])
    conll = out / "conll2003"
    sh([PY, "scripts/prepare_conll.py", "assets/conll2003", str(conll), "--train-fractions", "0.1,1.0"])
    log(f"{DEV_SLICE}: {dev_slice(conll / 'dev.spacy', conll / DEV_SLICE, args.dev_sentences)} sentences")
    lm = out / "lm"
    lm.mkdir(parents=True, exist_ok=True)
    plain = ROOT / ".gpu" / "lm_plain"  # uncompressed, not carried
    sh([PY, "scripts/prepare_lm_corpus.py", "assets/news", str(plain), "--dev-fraction", "0.02"])
    manifest: Dict[str, Any] = {
        "news_train_sentences": gzip_lines(plain / "train.txt", lm / "news_train.txt.gz"),
        "dev_sentences": gzip_lines(plain / "dev.txt", lm / "dev.txt.gz"),
    }
    manifest["bbc_train_sentences"], manifest["bbc_train_words"] = bbc_sentences(Path("assets/bbc"), lm / "bbc_train.txt.gz")
    shutil.rmtree(plain, ignore_errors=True)
    files = sorted(p for p in out.rglob("*") if p.is_file())
    manifest["files"] = {str(p.relative_to(out)): p.stat().st_size for p in files}
    (out / "MANIFEST.json").write_text(json.dumps(manifest, indent=2))
    total = sum(manifest["files"].values())
    for name, size in manifest["files"].items():
        log(f"  {name:<28} {size / 1e6:7.2f} MB")
    log(f"{out}: {total / 1e6:.1f} MB in all (carried to the GPU machine with the working tree)")


# ---- run (GPU machine, or --device cpu) -------------------------------------------------------------------
class Demo:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.plan = dict(TINY_PLAN if args.tiny else GPU_PLAN)
        if args.deadline:
            self.plan["deadline"] = args.deadline
        if args.pretrain_seconds:
            self.plan["pretrain_seconds"] = args.pretrain_seconds
        steps = dict(self.plan["ner_steps"])
        if getattr(args, "ner_steps", None):
            steps.update(parse_ner_steps(args.ner_steps))
        scale = getattr(args, "ner_scale", 1.0)
        steps = {k: max(1, int(v * scale)) for k, v in steps.items()}
        if steps != self.plan["ner_steps"]:
            # as many dev evaluations per run as the plan's, and the safety cap grows with the budget
            ratio = {k: steps[k] / self.plan["ner_steps"][k] for k in steps}
            self.plan["ner_eval_frequency"] = {k: max(1, round(v * ratio[k])) for k, v in self.plan["ner_eval_frequency"].items()}
            self.plan["ner_seconds"] = {k: v * max(1.0, ratio[k]) for k, v in self.plan["ner_seconds"].items()}
            self.plan["ner_steps"] = steps
        self.t0 = time.time()
        self.deadline = self.t0 + float(self.plan["deadline"])
        self.data = Path(args.data).resolve()
        self.work = Path(args.work).resolve()
        self.out = Path(args.out or os.environ.get("OUT") or ROOT / "metrics" / "gpu_demo").resolve()
        self.out.mkdir(parents=True, exist_ok=True)
        for name in ("results.json", "results.md", "results.png", "demo.log", "bilm_curve.png"):
            (self.out / name).unlink(missing_ok=True)
        self.log = Log(self.out / "demo.log")
        self.gpu = ["--gpu-id", "0"] if args.device == "gpu" else []
        # The repo root first: its spacy_elmo wins over an installed (possibly older) wheel's.
        self.env = dict(os.environ, PYTHONUNBUFFERED="1", ANSI_COLORS_DISABLED="1",
                        PYTHONPATH=os.pathsep.join([str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
        self.seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
        self.jobs = max(1, int(getattr(args, "jobs", 1) or 1))
        # side by side, each run gets its share of the cores (torch and BLAS would each start one thread per core)
        threads = str(max(1, (os.cpu_count() or 1) // self.jobs))
        self.ner_env = self.env if self.jobs == 1 else dict(self.env, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads,
                                                            OPENBLAS_NUM_THREADS=threads)
        self.lock = threading.RLock()  # results and their files, shared by the runs of --jobs
        self.results: Dict[str, Any] = {
            "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.t0)),
            "device": args.device, "tiny": bool(args.tiny), "plan": self.plan, "seeds": self.seeds,
            "environment": {}, "steps": {}, "bilm": {}, "ner": [], "skipped": [],
        }

    # -- bookkeeping
    def remaining(self) -> float:
        return self.deadline - time.time()

    def step(self, name: str, **fields: Any) -> None:
        with self.lock:
            self.results["steps"][name] = {**self.results["steps"].get(name, {}), **fields}

    def skip(self, what: str, why: str) -> None:
        self.log(f"[gpu_demo] skipped {what}: {why}")
        with self.lock:
            self.results["skipped"].append({"what": what, "why": why})
        self.save()

    def save(self) -> None:
        """results.json, then results.md + results.png: written after every step, so a run cut short keeps its results."""
        with self.lock:
            self.results["elapsed_seconds"] = round(time.time() - self.t0, 1)
            (self.out / "results.json").write_text(json.dumps(self.results, indent=2))
            try:
                (self.out / "results.md").write_text(self.markdown())
            except Exception as err:  # a report bug must not lose results.json or stop the run
                self.log(f"[gpu_demo] results.md failed: {err!r}")

    def markdown(self) -> str:
        metrics = self.work / "metrics"
        metrics.mkdir(parents=True, exist_ok=True)
        # report.py draws a chart each call (~0.5 s): only when a score or the biLM changed
        key = json.dumps([self.results["ner"], self.results["bilm"]], sort_keys=True, default=str)
        if key != getattr(self, "_report_key", None):
            self._report_key, self._table = key, self.report_table(metrics)
        return self.markdown_rest(self._table)

    def report_table(self, metrics: Path) -> str:
        """The CPU demo's table (and chart, copied to OUT/results.png) from scripts/report.py."""
        table = ""
        sys.path.insert(0, str(ROOT / "scripts"))
        try:
            import report  # scripts/report.py: the CPU demo's table and chart

            with contextlib.redirect_stdout(io.StringIO()):
                report.main(metrics, size="gpu-tiny" if self.args.tiny else "gpu", elmo_dir=self.work / "elmo",
                            fractions=",".join(FRACTIONS), textcat=False)
            table = (metrics / "results.md").read_text()
            if (metrics / "results.png").exists():
                shutil.copyfile(metrics / "results.png", self.out / "results.png")
        except Exception as err:
            table = f"(scripts/report.py failed: {err!r})\n"
        finally:
            sys.path.remove(str(ROOT / "scripts"))
        return table

    def markdown_rest(self, table: str) -> str:
        env, bilm = self.results["environment"], self.results["bilm"]
        lines = [
            f"# GPU demo{' (tiny, CPU smoke run)' if self.args.tiny else ''}",
            "",
            f"Device: {env.get('device_name', self.args.device)}; torch {env.get('torch', '?')}; started "
            f"{self.results['started']}; {self.results['elapsed_seconds'] / 60:.1f} min so far"
            + (" (finished)." if self.results.get("finished") else "."),
            "",
            table.rstrip(),
            "",
        ]
        if bilm:
            lines.append(
                f"biLM training: {bilm.get('train_tokens') or 0:,} tokens in {bilm.get('steps')} steps, "
                f"{bilm.get('epochs') or 0} full passes over {bilm.get('corpus_tokens') or 0:,} tokens of text; "
                f"{bilm.get('tokens_per_second') or 0:,.0f} tokens/s overall (evaluations included), "
                + (f"{bilm['tokens_per_second_median']:,.0f} median over the logged training windows; "
                   if bilm.get("tokens_per_second_median") else "")
                + f"stopped by "
                f"{bilm.get('stop_reason')}; dev perplexity {bilm.get('dev_perplexity') or float('nan'):.1f} "
                + (f"(the exported weights, step {bilm['exported_step']}) " if bilm.get("exported_step") is not None else "")
                + f"(unigram baseline {bilm.get('unigram_perplexity') or float('nan'):.1f})."
            )
            lines.append("")
        if self.results["ner"]:
            budget = ", ".join(f"{fr}% of train {self.plan['ner_steps'][fr]} steps (dev evaluation every "
                               f"{self.plan['ner_eval_frequency'][fr]})" for fr in FRACTIONS)
            capped = [f"{r['name']} (step ~{r['last_logged_step']})" for r in self.results["ner"] if r.get("cap_hit")]
            lines += [f"ner budget, the same for ELMo and tok2vec: {budget}. Stopped early by the wall-clock safety "
                      f"cap: {', '.join(capped) if capped else 'none'}.", ""]
        seeds = self.seed_table()
        if seeds:
            lines += [seeds, ""]
        lines += ["| step | status | seconds | note |", "| --- | --- | ---: | --- |"]
        for name, s in self.results["steps"].items():
            lines.append(f"| {name} | {s.get('status', '?')} | {s.get('seconds', 0):.0f} | {s.get('note', '')} |")
        for item in self.results["skipped"]:
            lines.append(f"| {item['what']} | skipped | 0 | {item['why']} |")
        return "\n".join(lines) + "\n"

    def seed_table(self) -> str:
        """ner test F1 per seed at each fraction that has more than one seed (as README's three-seed table)."""
        out: List[str] = []
        for fraction in FRACTIONS:
            scores: Dict[str, Dict[int, float]] = {"elmo": {}, "tok2vec": {}}
            for r in self.results["ner"]:
                if r["fraction"] == fraction and r.get("ents_f") is not None:
                    scores[r["features"]][r["seed"]] = r["ents_f"]
            both = sorted(set(scores["elmo"]) & set(scores["tok2vec"]))
            if len(both) < 2:
                continue
            if not out:
                out += ["| ner test F1 by seed | ELMo features | tok2vec baseline | mean difference | ELMo ahead |",
                        "| --- | --- | --- | ---: | ---: |"]

            def cell(features: str) -> str:
                values = [scores[features][s] for s in both]
                return " / ".join(fmt(v) for v in values) + f" (mean {fmt(statistics.mean(values))})"

            diffs = [scores["elmo"][s] - scores["tok2vec"][s] for s in both]
            out.append(f"| {fraction}% of train, seeds {', '.join(map(str, both))} | {cell('elmo')} | {cell('tok2vec')} | "
                       f"{100 * statistics.mean(diffs):+.2f} | {sum(d > 0 for d in diffs)} of {len(diffs)} |")
        return "\n".join(out)

    # -- steps
    def environment(self) -> None:
        env = self.results["environment"]
        env.update({"python": platform.python_version(), "machine": platform.machine(), "argv": sys.argv})
        try:
            import torch

            env["torch"] = torch.__version__
            if self.args.device == "gpu":
                env["cuda_available"] = torch.cuda.is_available()
                env["device_name"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device"
            else:
                env["device_name"] = f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"
        except Exception as err:
            env["error"] = repr(err)
        self.log(f"[gpu_demo] {json.dumps(env)}")
        self.step("environment", status="ok" if "error" not in env else "error", seconds=0.0, note=env.get("device_name", ""))
        self.save()

    def unpack_lm(self) -> None:
        """.gpu/data/lm/*_train.txt.gz -> work/lm/train.txt (one file), dev.txt.gz -> work/lm/dev.txt."""
        start = time.time()
        lm = self.work / "lm"
        lm.mkdir(parents=True, exist_ok=True)
        limit = int(self.plan["lm_lines"])
        counts = {}
        for split, sources in (("train", sorted((self.data / "lm").glob("*_train.txt.gz"))), ("dev", [self.data / "lm" / "dev.txt.gz"])):
            n = words = 0
            with (lm / f"{split}.txt").open("w", encoding="utf8") as fout:
                for src in sources:
                    with gzip.open(src, "rt", encoding="utf8") as fin:
                        for line in fin:
                            if limit and n >= (limit if split == "train" else max(1, limit // 10)):
                                break
                            fout.write(line)
                            n += 1
                            words += len(line.split())
            counts[split] = {"files": [s.name for s in sources], "sentences": n, "tokens": words}
        if not counts["train"]["sentences"]:
            raise RuntimeError(f"no training text in {self.data / 'lm'} (run `make gpu-demo-data` on the CPU machine)")
        self.results["lm_text"] = counts
        self.step("unpack text", status="ok", seconds=round(time.time() - start, 1),
                  note=f"{counts['train']['tokens']:,} training tokens, {counts['dev']['tokens']:,} dev tokens")
        self.save()

    def pretrain(self) -> None:
        elmo = self.work / "elmo"
        p = self.plan
        cmd = [PY, "-m", "spacy_elmo", "pretrain", p["pretrain_config"], "--output", elmo,
               "--paths.train", self.work / "lm" / "train.txt", "--paths.dev", self.work / "lm" / "dev.txt",
               "--training.max_seconds", p["pretrain_seconds"],
               *p["pretrain_extra"], *self.gpu]
        # The cap only guards against a hang: vocabulary, evaluations and the export come on top of max_seconds.
        cap = float(p["pretrain_seconds"]) + 180
        rc, seconds, capped, output = run_logged(cmd, self.log, cap, self.env)
        note = ""
        if rc != 0 and "diverged" in output and (elmo / "checkpoint.pt").exists():
            # Non-finite loss: continue from the last checkpoint at half the learning rate (max_seconds still
            # counts the time already spent, so the budget holds).
            lr = float(re.search(r"learning_rate\s*=\s*([0-9.e-]+)", (ROOT / p["pretrain_config"]).read_text()).group(1)) / 2
            note = f"diverged; resumed at learning rate {lr:g}"
            rc, more, capped, output = run_logged(cmd + ["--resume", "--training.learning_rate", str(lr)], self.log, cap, self.env)
            seconds += more
        ok = rc == 0 and (elmo / "weights.hdf5").exists()
        self.step("pretrain", status="ok" if ok else f"failed (exit {rc})", seconds=round(seconds, 1),
                  note=(note + "; " if note else "") + ("killed at the hang cap" if capped else ""))
        self.read_bilm_metrics()
        if (elmo / "training_curve.png").exists():
            shutil.copyfile(elmo / "training_curve.png", self.out / "bilm_curve.png")
        self.save()

    def read_bilm_metrics(self) -> None:
        elmo = self.work / "elmo"
        path = elmo / "metrics.json"
        if not path.exists():
            return
        m = json.loads(path.read_text())
        dev = m.get("dev") or {}
        rates, parameters = [], None
        if (elmo / "log.jsonl").exists():
            for line in (elmo / "log.jsonl").read_text().splitlines():
                try:
                    row = json.loads(line)
                except ValueError:
                    continue
                if row.get("event") == "train" and row.get("step", 0) > 25:  # the first window holds CUDA warm-up
                    rates.append(row.get("tokens_per_second", 0))
                if row.get("event") == "start":
                    parameters = row.get("parameters")
        self.results["bilm"] = {
            "config": self.plan["pretrain_config"],
            "steps": m.get("step"), "epochs": m.get("epoch"), "train_tokens": m.get("train_tokens"),
            "corpus_tokens": (m.get("train_corpus") or {}).get("tokens"),
            "wall_seconds": m.get("wall_seconds"), "tokens_per_second": m.get("tokens_per_second"),
            "tokens_per_second_median": statistics.median(rates) if rates else None,
            "stop_reason": m.get("stop_reason"), "parameters": parameters,
            "exported_step": (m.get("exported") or {}).get("step"),  # "dev" below describes these weights
            "dev_perplexity": dev.get("perplexity"), "dev_forward_perplexity": dev.get("forward_perplexity"),
            "dev_backward_perplexity": dev.get("backward_perplexity"), "unigram_perplexity": m.get("unigram_perplexity"),
            "dev_history": [{k: h.get(k) for k in ("step", "perplexity")} for h in m.get("history", [])],
        }

    def elmo_width(self) -> int:
        return 2 * int(json.loads((self.work / "elmo" / "options.json").read_text())["lstm"]["projection_dim"])

    def ner_need(self, features: str, fraction: str) -> float:
        """Seconds one ner run (train + evaluate) is expected to take: from the main run of the same features and
        fraction, else its wall-clock cap."""
        main = next((r for r in self.results["ner"] if r["features"] == features and r["fraction"] == fraction
                     and r["seed"] == (self.seeds[0] if self.seeds else 0)), None)
        if main:
            return 1.1 * (main["train_seconds"] + main.get("evaluate_seconds", 30))
        return float(self.plan["ner_seconds"][fraction]) + 30

    def ner(self, features: str, fraction: str, seed: int) -> None:
        """One spacy train + spacy evaluate at its full step budget (extra_seeds decides whether a seed runs)."""
        name = ner_name(features, fraction, seed)
        prefix = f"[{name}] " if self.jobs > 1 else ""
        p = self.plan
        if features == "elmo" and not (self.work / "elmo" / "weights.hdf5").exists():
            self.skip(name, "no pretrained biLM")
            return
        cap = float(p["ner_seconds"][fraction])
        output = self.work / name
        shutil.rmtree(output, ignore_errors=True)
        corpus = self.data / "conll2003"
        dev = corpus / DEV_SLICE if (corpus / DEV_SLICE).exists() else corpus / "dev.spacy"
        cmd = [PY, "-m", "spacy", "train", f"configs/ner_{features}.cfg", "--output", output,
               "--paths.train", corpus / FRACTIONS[fraction], "--paths.dev", dev,
               "--paths.elmo_weights", self.work / "elmo", "--system.seed", seed,
               "--training.max_steps", p["ner_steps"][fraction], "--training.eval_frequency", p["ner_eval_frequency"][fraction],
               "--training.batcher.size.start", p["ner_batch"], "--training.batcher.size.stop", p["ner_batch"]]
        if features == "elmo":
            cmd += ["--components.ner.model.tok2vec.embed.*.features.*.elmo.width", self.elmo_width()]
        rc, seconds, capped, out = run_logged(cmd + self.gpu, self.log, cap, self.ner_env, prefix)
        # spaCy's console table: "  E    #  LOSS ...  SCORE": the last row says how far training got.
        rows = re.findall(r"^\s*(\d+)\s+(\d+)\s+[\d.]+", out, flags=re.M)
        record: Dict[str, Any] = {"name": name, "features": features, "fraction": fraction, "seed": seed,
                                  "train_seconds": round(seconds, 1), "train_exit": rc,
                                  "max_steps": p["ner_steps"][fraction], "eval_frequency": p["ner_eval_frequency"][fraction],
                                  "stopped_by": f"wall-clock safety cap ({cap:.0f}s)" if capped
                                  else (f"max_steps={p['ner_steps'][fraction]}" if rc == 0 else "error"),
                                  "cap_hit": capped,
                                  "last_logged_step": int(rows[-1][1]) if rows else None}
        if capped:
            self.log(f"[gpu_demo] {name} was stopped by its safety cap at step ~{record['last_logged_step']} of "
                     f"{p['ner_steps'][fraction]}: its comparison with the other features is not at equal steps", prefix)
        model = output / "model-best" if (output / "model-best" / "meta.json").exists() else output / "model-last"
        record["model"] = model.name
        status = "ok" if rc == 0 or capped else f"train failed (exit {rc})"
        if (model / "meta.json").exists():
            metrics = self.work / "metrics" / f"{name}.json"
            metrics.unlink(missing_ok=True)
            erc, eseconds, _, _ = run_logged([PY, "-m", "spacy", "evaluate", model, corpus / "test.spacy", "--output", metrics, *self.gpu],
                                             self.log, float(p["evaluate_seconds"]), self.ner_env, prefix)
            if erc != 0 and model.name == "model-best" and (output / "model-last" / "meta.json").exists():
                # the cap's SIGINT may have landed while model-best was being written: score model-last
                model = output / "model-last"
                record["model"] = model.name
                erc, more, _, _ = run_logged([PY, "-m", "spacy", "evaluate", model, corpus / "test.spacy", "--output", metrics, *self.gpu],
                                             self.log, float(p["evaluate_seconds"]), self.ner_env, prefix)
                eseconds += more
            record["evaluate_seconds"] = round(eseconds, 1)
            if erc == 0 and metrics.exists():
                scores = json.loads(metrics.read_text())
                record.update({k: scores.get(k) for k in ("ents_f", "ents_p", "ents_r", "speed")})
            else:
                status = f"evaluate failed (exit {erc})"
        else:
            status = f"no model (train exit {rc})"
        with self.lock:
            self.results["ner"] = [r for r in self.results["ner"] if r["name"] != name] + [record]
        self.step(name, status=status, seconds=round(seconds + record.get("evaluate_seconds", 0), 1),
                  note=f"test F1 {fmt(record.get('ents_f'))}, {record['stopped_by']}, last logged step "
                       f"{record['last_logged_step']}, scored {model.name}")
        self.save()

    def run(self) -> None:
        shutil.rmtree(self.work, ignore_errors=True)  # a rerun starts fresh (pretrain refuses an old checkpoint)
        (self.work / "metrics").mkdir(parents=True)
        self.log(f"[gpu_demo] device {self.args.device}{' tiny' if self.args.tiny else ''}; data {self.data}; "
                 f"work {self.work}; results {self.out}; deadline {self.plan['deadline']}s")
        steps = [("environment", self.environment), ("unpack text", self.unpack_lm), ("pretrain", self.pretrain)]
        main_runs = [(f, fr, self.seeds[0] if self.seeds else 0) for fr in FRACTIONS for f in ("elmo", "tok2vec")]
        for name, fn in steps:
            self.guarded(name, fn)
        if self.jobs > 1:
            self.ner_side_by_side(main_runs)
        else:
            for features, fraction, seed in main_runs:
                self.guarded(ner_name(features, fraction, seed), lambda: self.ner(features, fraction, seed))
            self.extra_seeds()
        self.results["finished"] = True
        self.save()
        self.log("\n" + (self.out / "results.md").read_text())
        self.log(f"[gpu_demo] done in {(time.time() - self.t0) / 60:.1f} min: {self.out}/results.md, results.json, results.png")

    def extra_seeds(self) -> None:
        """More seeds at 10%, where the paper's gain (and the CPU demo's) is largest: a pair or nothing (an ELMo
        run whose baseline would then miss the deadline is no comparison, so the pair's time is checked first)."""
        for seed in self.seeds[1:]:
            need = sum(self.ner_need(features, "10") for features in ("elmo", "tok2vec"))
            fits = self.remaining() >= need
            for features in ("elmo", "tok2vec"):
                if not fits:
                    self.skip(ner_name(features, "10", seed), f"{self.remaining():.0f}s left before the deadline, "
                              f"about {need:.0f}s needed for seed {seed}'s ELMo and tok2vec runs")
                    continue
                self.guarded(ner_name(features, "10", seed), lambda: self.ner(features, "10", seed))

    def ner_side_by_side(self, main_runs: List[Tuple[str, str, int]]) -> None:
        """--jobs N: the main runs, then the extra seeds at 10%, as one queue with N slots; whenever a run ends the
        next starts. The main runs go longest first (most steps, then the larger fraction), so no slot waits on a long
        run at the end. An extra seed starts only if its expected time still fits before the deadline."""
        main_runs = sorted(main_runs, key=lambda r: (-int(self.plan["ner_steps"][r[1]]), -int(r[1])))
        extra = [(features, "10", seed) for seed in self.seeds[1:] for features in ("elmo", "tok2vec")]

        def one(run: Tuple[str, str, int], optional: bool) -> None:
            features, fraction, seed = run
            name = ner_name(features, fraction, seed)
            need = self.ner_need(features, fraction)
            if optional and self.remaining() < need:
                self.skip(name, f"{self.remaining():.0f}s left before the deadline, about {need:.0f}s needed")
                return
            self.guarded(name, lambda: self.ner(features, fraction, seed))

        with concurrent.futures.ThreadPoolExecutor(max_workers=self.jobs) as pool:
            futures = [pool.submit(one, run, False) for run in main_runs] + [pool.submit(one, run, True) for run in extra]
            for future in futures:
                future.result()

    def guarded(self, name: str, fn) -> None:
        """One failing step is recorded and the next one is attempted."""
        try:
            fn()
        except Exception as err:
            self.log(f"[gpu_demo] step {name} failed: {err!r}")
            self.step(name, status=f"error: {err!r}"[:200])
            self.save()


def main(argv: Optional[List[str]] = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("data", "run", "-h", "--help"):
        argv.insert(0, "run")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    data = sub.add_parser("data", help="fetch + prepare the data into .gpu/data/ (CPU machine, needs the venv)")
    data.add_argument("--data", default=str(DATA))
    data.add_argument("--dev-sentences", type=int, default=500, help="size of the dev slice scored during ner training")
    run = sub.add_parser("run", help="pretrain, train, evaluate, report")
    run.add_argument("--device", choices=["gpu", "cpu"], default="gpu")
    run.add_argument("--tiny", action="store_true", help="tiny biLM, few steps, small slices: the CPU smoke run")
    run.add_argument("--data", default=str(DATA), help="prepared by `bench/gpu_demo.py data`")
    run.add_argument("--work", default=str(WORK), help="biLM, pipelines, metrics (deleted at the start)")
    run.add_argument("--out", default=None, help="results.md/json/png, demo.log (default $OUT, else metrics/gpu_demo)")
    run.add_argument("--seeds", default="0,1,2", help="seed of the main runs first; the others at 10%% if time allows")
    run.add_argument("--deadline", type=float, default=0, help="seconds; 0: the plan's")
    run.add_argument("--pretrain-seconds", type=float, default=0, help="the biLM's wall-clock cap; 0: the plan's")
    run.add_argument("--ner-steps", default=None,
                     help="ner step budget, the same for ELMo and tok2vec: N for every fraction, or 10=N,100=M "
                          "(evaluation frequency and safety cap scale with it)")
    run.add_argument("--jobs", type=int, default=1,
                     help="ner runs side by side (one GPU or CPU shared; each gets cores/jobs threads): a queue, "
                          "longest first; 1: one after the other, the extra seeds only if the deadline allows")
    run.add_argument("--ner-scale", type=float, default=1.0, help="multiplies every ner run's step budget (and with it "
                                                                   "the evaluation frequency and safety cap)")
    args = parser.parse_args(argv)
    if args.command == "data":
        cmd_data(args)
    else:
        Demo(args).run()


if __name__ == "__main__":
    main()
