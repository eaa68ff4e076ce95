"""One prepared check of every GPU path, in one go, inside a time budget (a GPU is lent for minutes).

    . bench/gpu_env.sh && python3 bench/gpu_check.py [--device cuda|cpu] [--budget-seconds 210] [--out FILE] [--quick]

Steps (each timed and recorded as ok / fail / skipped with its numbers; a failure never stops later steps):
  device      GPU name and capability; measured matmul peaks (fp32 with TF32 off, TF32, bf16, fp16) and copy bandwidth
  parity      CPU vs device outputs of the biLM: the bilm-tf fixture model (and bilm-tf's own reference outputs,
              stateful) and a full-size 2x4096_512_2048cnn_2xhighway biLM with random weights: fp32 max |diff|
              (TF32 off), bf16 / fp16 autocast relative error and per-layer cosine, against stated tolerances
  throughput  the full-size biLM's forward at batch 32 / 128 / 512 of 20-35-token sentences in fp32, tf32, bf16,
              fp16: real tokens/s and the fraction of the measured matmul peak (204 MFLOP/token, BiLMOptions.flops_per_token)
  spacy_train `spacy train configs/ner_elmo.cfg --gpu-id 0 --system.gpu_allocator pytorch` on CoNLL ci slices
              with a small random biLM; the trained pipeline on the GPU in-process (elmo on cuda); `spacy
              evaluate` and `spacy.load` on CPU
  pretrain    `python -m spacy_elmo pretrain` (small config, bf16 on a GPU) for a fixed number of steps: tokens/s
              and MFU; `--resume` from its checkpoint; torchrun with one process for a few steps

`--device cpu` runs the same steps on CPU with smaller models and sizes (tests/bench/test_gpu_check.py runs it
with --quick). The JSON (--out; default $OUT/gpu_check.json if $OUT is set, else metrics/gpu_check.json) is
rewritten after every step, and a log of every subprocess goes next to it (gpu_check.log). The budget counts from
$SPACY_ELMO_GPU_T0 (set by bench/gpu_env.sh, so the wheel install is inside it) or from the script's start; a step
that would not fit in what is left is skipped and recorded as skipped, and subprocesses get deadlines.
"""
import argparse
import copy
import json
import os
import platform
import random
import signal
import string
import subprocess
import sys
import tempfile
import time
import traceback
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Sequence

import numpy
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the working tree's spacy_elmo, also when bench/ is the script's folder

from spacy_elmo import BiLM, BiLMOptions, load_bilm, save_bilm  # noqa: E402
from spacy_elmo.bilm.chars import batch_to_char_ids  # noqa: E402
from spacy_elmo.bilm.precision import unsupported_reason  # noqa: E402

FULL = BiLMOptions()  # 2x4096_512_2048cnn_2xhighway, the published ELMo
# CPU stand-ins for the full model: same structure, sizes a 2-core machine runs in seconds
CPU_MODEL = BiLMOptions(lstm_dim=1024, projection_dim=128, filters=[(1, 32), (2, 32), (3, 64), (4, 128), (5, 256)], n_highway=1)
QUICK_MODEL = BiLMOptions(lstm_dim=256, projection_dim=64, filters=[(1, 16), (2, 16), (3, 32), (4, 64)], n_highway=1)
# the biLM of the spacy train step: small, so the step measures the GPU plumbing, not the biLM
TRAIN_MODEL = BiLMOptions(lstm_dim=256, projection_dim=64, filters=[(1, 16), (2, 16), (3, 32), (4, 64)], n_highway=1)
# relative-error tolerances of autocast outputs against fp32 (bf16 keeps 8 mantissa bits, fp16 11)
TOLERANCE = {"fp32_max_abs": 1e-4, "bf16_rel": 2e-2, "fp16_rel": 5e-3, "bilm_tf_max_abs": 1e-4}
STEP_ORDER = ["device", "parity", "throughput", "lstm_train", "spacy_train", "pretrain"]
# seconds a step needs at least (a step starts only if this much is left; later steps' needs are reserved)
MIN_NEED = {"cuda": {"device": 5, "parity": 15, "throughput": 10, "lstm_train": 10, "spacy_train": 45, "pretrain": 40},
            "cpu": {"device": 2, "parity": 5, "throughput": 5, "lstm_train": 3, "spacy_train": 20, "pretrain": 15}}


class StepFailed(Exception):
    """A check inside a step missed its tolerance: the step is recorded as fail with its numbers."""


class Check:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.device = torch.device(args.device)
        self.is_cuda = self.device.type == "cuda"
        # the install's start (bench/gpu_env.sh), unless that was long ago: a second run in the same shell
        # gets its own budget
        t0 = float(os.environ.get("SPACY_ELMO_GPU_T0") or 0)
        self.t0 = t0 if 0 <= time.time() - t0 < 300 else time.time()
        self.end = self.t0 + args.budget_seconds
        self.out = Path(args.out)
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.log_path = self.out.with_suffix(".log")
        self.log_path.write_text("", encoding="utf8")
        self.work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="gpu_check_"))
        self.work.mkdir(parents=True, exist_ok=True)
        self.shared: Dict[str, Any] = {}  # what one step hands to later ones (peaks, the full model)
        self.current_deadline = self.end
        self.report: Dict[str, Any] = {"meta": self._meta(), "tolerances": TOLERANCE, "steps": {}}
        self.write()

    # ---- bookkeeping -----------------------------------------------------------------------------
    def _meta(self) -> Dict[str, Any]:
        meta: Dict[str, Any] = {
            "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "device": str(self.device),
            "quick": bool(self.args.quick), "budget_seconds": self.args.budget_seconds,
            "seconds_before_script": round(time.time() - self.t0, 1), "python": platform.python_version(),
            "torch": torch.__version__, "torch_cuda": torch.version.cuda, "numpy": numpy.__version__,
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "work_dir": str(self.work),
        }
        for name in ("spacy", "thinc", "cupy", "h5py", "spacy-elmo"):
            try:
                import importlib.metadata as md

                meta[name] = md.version(name if name != "cupy" else _cupy_dist())
            except Exception as err:  # noqa: BLE001 - a missing package is a fact to record, not a crash
                meta[name] = f"unavailable ({type(err).__name__})"
        return meta

    def write(self) -> None:
        steps = self.report["steps"].values()
        self.report["summary"] = {s: sum(1 for r in steps if r["status"] == s) for s in ("ok", "fail", "skipped")}
        self.report["elapsed_seconds"] = round(time.time() - self.t0, 1)
        tmp = self.out.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.report, indent=2, default=_jsonable), encoding="utf8")
        tmp.replace(self.out)

    def say(self, text: str) -> None:
        line = f"[{time.time() - self.t0:6.1f}s] {text}"
        print(line, flush=True)
        with self.log_path.open("a", encoding="utf8") as fout:
            fout.write(line + "\n")

    def left(self) -> float:
        return self.current_deadline - time.time()

    def run_step(self, name: str, fn: Callable[[Dict[str, Any]], None]) -> None:
        needs = MIN_NEED[self.device.type]
        later = STEP_ORDER[STEP_ORDER.index(name) + 1 :]
        reserve = sum(needs[s] for s in later if s in self.args.steps)
        self.current_deadline = self.end - reserve
        result: Dict[str, Any] = {"status": "running", "results": {}}
        if name not in self.args.steps:
            result.update(status="skipped", reason="not in --steps")
            self.report["steps"][name] = result
            self.write()
            return
        if self.left() < needs[name]:
            result.update(status="skipped", reason=f"{self.left():.0f}s left of the budget for it, needs {needs[name]}s")
            self.report["steps"][name] = result
            self.say(f"== {name}: skipped ({result['reason']})")
            self.write()
            return
        self.report["steps"][name] = result
        self.say(f"== {name} (up to {self.left():.0f}s)")
        start = time.perf_counter()
        try:
            fn(result["results"])
            result["status"] = "ok"
        except StepFailed as err:
            result.update(status="fail", error=str(err))
        except Exception as err:  # noqa: BLE001 - record and go on: one broken path must not hide the others
            result.update(status="fail", error=f"{type(err).__name__}: {err}",
                          traceback=traceback.format_exc().splitlines()[-25:])
        result["seconds"] = round(time.perf_counter() - start, 1)
        self.say(f"== {name}: {result['status']} in {result['seconds']}s" + (f" ({result.get('error')})" if result.get("error") else ""))
        if self.is_cuda:
            torch.cuda.empty_cache()
        self.write()

    def sh(self, res: Dict[str, Any], key: str, cmd: Sequence[str], cap: float) -> Dict[str, Any]:
        """Run a subprocess (its own process group, killed at its deadline); its output goes to the log and
        res[key] gets rc, seconds (and the output's tail if it failed) before any StepFailed."""
        label = key
        timeout = max(1.0, min(cap, self.left()))
        # plain logs: wasabi (spaCy's printer) drops its colour codes with these set
        full_env = dict(os.environ, PYTHONUNBUFFERED="1", ANSI_COLORS_DISABLED="1", NO_COLOR="1")
        self.say(f"$ {' '.join(str(c) for c in cmd)}   (timeout {timeout:.0f}s)")
        start = time.perf_counter()
        proc = subprocess.Popen([str(c) for c in cmd], cwd=ROOT, env=full_env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)
        try:
            output, _ = proc.communicate(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the group this call started (torchrun's workers included)
            output, _ = proc.communicate()
            timed_out = True
        seconds = time.perf_counter() - start
        with self.log_path.open("a", encoding="utf8") as fout:
            fout.write(f"---- {label}: rc={proc.returncode} {seconds:.1f}s\n{output}\n")
        tail = output.strip().splitlines()[-15:]
        info: Dict[str, Any] = {"rc": proc.returncode, "seconds": round(seconds, 1), "timed_out": timed_out}
        res[key] = info
        if timed_out or proc.returncode != 0:
            info["output_tail"] = tail
            raise StepFailed(f"{label}: " + (f"timed out after {timeout:.0f}s" if timed_out else f"exit {proc.returncode}")
                             + " | " + " / ".join(tail[-4:]))
        return info

    def sync(self) -> None:
        if self.is_cuda:
            torch.cuda.synchronize(self.device)


def _cupy_dist() -> str:
    import importlib.metadata as md

    for dist in md.distributions():
        name = (dist.metadata["Name"] or "").lower()
        if name == "cupy" or name.startswith("cupy-cuda"):
            return dist.metadata["Name"]
    return "cupy"


def _jsonable(value: Any) -> Any:
    if isinstance(value, (numpy.floating, numpy.integer)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return str(value)


@contextmanager
def matmul_precision(tf32: bool) -> Iterator[None]:
    """TF32 on or off for matmuls and cuDNN convolutions (the char CNN), restored afterwards."""
    old = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def autocast(device: torch.device, mode: str):
    if mode in ("bf16", "fp16"):
        return torch.autocast(device.type, dtype=torch.bfloat16 if mode == "bf16" else torch.float16)
    return nullcontext()


def random_bilm(options: BiLMOptions, directory: Path, seed: int = 0) -> BiLM:
    """Random weights written with save_bilm and read back with load_bilm.

    The modules' own initialisation (xavier for the LSTMs), not bench/bench_bilm.py's N(0, 0.05): with that,
    the 4096-d LSTMs saturate and are chaotic, so bf16's rounding grows through the recurrence to ~40%
    relative error (cosine 0.89 at the top layer, measured on CPU), which would say nothing about the GPU.
    With xavier weights CPU autocast gives bf16 5e-3 and fp16 6e-4, like a trained model."""
    torch.manual_seed(seed)
    bilm = BiLM(options)
    save_bilm(bilm, directory)
    del bilm
    return load_bilm(directory / "options.json", directory / "weights.hdf5").eval()


def random_sentences(n: int, seed: int, lengths: Sequence[int] = (20, 35)) -> List[List[str]]:
    """Random words of 1-12 letters, 20-35 tokens a sentence (CoNLL/news sentences average ~25-30 with punctuation)."""
    rng = random.Random(seed)
    words = ["".join(rng.choices(string.ascii_letters, k=rng.randint(1, 12))) for _ in range(5000)]
    return [[rng.choice(words) for _ in range(rng.randint(*lengths))] for _ in range(n)]


# ---- step a: device ----------------------------------------------------------------------------------
def step_device(check: Check, res: Dict[str, Any]) -> None:
    dev = check.device
    if check.is_cuda:
        if not torch.cuda.is_available():
            raise StepFailed("torch sees no CUDA device (torch.cuda.is_available() is False)")
        props = torch.cuda.get_device_properties(dev)
        res.update(name=torch.cuda.get_device_name(dev), capability=list(torch.cuda.get_device_capability(dev)),
                   memory_gib=round(props.total_memory / 2**30, 1), multiprocessors=props.multi_processor_count,
                   device_count=torch.cuda.device_count(), cudnn=torch.backends.cudnn.version())
        check.report["meta"]["gpu"] = res["name"]
    else:
        res.update(name=platform.processor() or platform.machine(), threads=torch.get_num_threads())
    n = 8192 if check.is_cuda else (512 if check.args.quick else 1024)
    repeats = 5 if check.is_cuda else 3
    peaks: Dict[str, float] = {}
    modes = [("fp32", torch.float32, False), ("tf32", torch.float32, True), ("bf16", torch.bfloat16, False), ("fp16", torch.float16, False)]
    if not check.is_cuda:
        modes = [m for m in modes if m[0] in ("fp32", "bf16")]  # TF32 is a GPU mode; fp16 GEMM on CPU is an emulation
    for label, dtype, tf32 in modes:
        a = torch.randn(n, n, device=dev, dtype=dtype)
        b = torch.randn(n, n, device=dev, dtype=dtype)
        with matmul_precision(tf32):
            torch.mm(a, b)
            check.sync()
            times = []
            for _ in range(repeats):
                if check.is_cuda:
                    start_ev, end_ev = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                    start_ev.record()
                    torch.mm(a, b)
                    end_ev.record()
                    end_ev.synchronize()
                    times.append(start_ev.elapsed_time(end_ev) / 1e3)
                else:
                    start = time.perf_counter()
                    torch.mm(a, b)
                    times.append(time.perf_counter() - start)
        median = sorted(times)[len(times) // 2]
        peaks[label] = 2 * n**3 / median / 1e12
        del a, b
    if not check.is_cuda:
        peaks["tf32"], peaks["fp16"] = peaks["fp32"], peaks["bf16"]  # the modes step c times on CPU map here
    res["matmul_n"] = n
    res["matmul_tflops"] = {k: round(v, 3) for k, v in peaks.items()}
    check.shared["peaks"] = peaks
    if check.is_cuda:  # device-to-device copy bandwidth (read + write), 1 GiB
        x = torch.empty(2**28, device=dev, dtype=torch.float32)
        y = torch.empty_like(x)
        y.copy_(x)
        check.sync()
        start = time.perf_counter()
        for _ in range(5):
            y.copy_(x)
        check.sync()
        res["copy_bandwidth_gb_s"] = round(5 * 2 * x.numel() * 4 / (time.perf_counter() - start) / 1e9, 1)
        del x, y
    if check.is_cuda:
        res["cupy"] = cupy_probe()
    res["headline"] = (f"{res['name']}; matmul TFLOP/s " + ", ".join(f"{k} {v:.3g}" for k, v in peaks.items())
                       + ("; CuPy/thinc: " + res["cupy"].get("error", "ok") if "cupy" in res else "")
                       + (f"; copy {res['copy_bandwidth_gb_s']} GB/s" if "copy_bandwidth_gb_s" in res else ""))


def cupy_probe() -> Dict[str, Any]:
    """What `spacy train --gpu-id` will need: CuPy importing the way thinc imports it, a kernel, a cuBLAS GEMM.
    thinc swallows CuPy's ImportError (has_cupy = False, then "Cannot use GPU, CuPy is not installed"), so the
    real error is recorded here."""
    out: Dict[str, Any] = {}
    try:
        import cupy
        import cupy.cublas  # noqa: F401 - thinc.compat imports these three; any failing disables CuPy in thinc
        import cupyx  # noqa: F401

        out["version"] = cupy.__version__
        x = cupy.arange(1024, dtype=cupy.float32).reshape(32, 32)
        out["sum"] = float((x @ x).sum())
        from thinc.compat import has_cupy, has_cupy_gpu

        out.update(thinc_has_cupy=bool(has_cupy), thinc_has_cupy_gpu=bool(has_cupy_gpu))
        if not (has_cupy and has_cupy_gpu):
            out["error"] = "thinc does not see CuPy / a CuPy GPU"
    except Exception as err:  # noqa: BLE001
        out["error"] = f"{type(err).__name__}: {err}"
    return out


# ---- step b: parity ----------------------------------------------------------------------------------
def compare(outputs: List[numpy.ndarray], reference: List[numpy.ndarray]) -> Dict[str, Any]:
    """max |diff|, ||out - ref|| / ||ref|| and the mean per-token cosine of each layer."""
    diff = numpy.concatenate([(o - r).reshape(-1) for o, r in zip(outputs, reference)])
    ref = numpy.concatenate([r.reshape(-1) for r in reference])
    cosines = []
    for layer in range(reference[0].shape[0]):
        o = numpy.concatenate([x[layer] for x in outputs]).astype(numpy.float64)
        r = numpy.concatenate([x[layer] for x in reference]).astype(numpy.float64)
        num = (o * r).sum(-1)
        den = numpy.linalg.norm(o, axis=-1) * numpy.linalg.norm(r, axis=-1)
        cosines.append(float(numpy.mean(num / numpy.maximum(den, 1e-30))))
    return {"max_abs_diff": float(numpy.abs(diff).max()), "rel_err": float(numpy.linalg.norm(diff) / max(numpy.linalg.norm(ref), 1e-30)),
            "max_abs_ref": float(numpy.abs(ref).max()), "cosine_per_layer": [round(c, 6) for c in cosines]}


def precision_cases(check: Check, bilm: BiLM, sentences: List[List[str]], batch_size: int, problems: List[str], label: str) -> Dict[str, Any]:
    """The same biLM on CPU (fp32, the reference) and on the device in fp32 (TF32 off), bf16 and fp16 autocast."""
    reference = bilm.cpu().embed_sentences(sentences, batch_size=batch_size)
    on_device = copy.deepcopy(bilm).to(check.device)
    out: Dict[str, Any] = {"sentences": len(sentences), "tokens": sum(len(s) for s in sentences)}
    modes = ["fp32", "bf16", "fp16"]
    for mode in modes:
        try:
            with matmul_precision(False), autocast(check.device, mode):
                outputs = on_device.embed_sentences(sentences, batch_size=batch_size)
        except Exception as err:  # noqa: BLE001 - one precision failing must not hide the others
            if not check.is_cuda and mode != "fp32" and isinstance(err, RuntimeError):
                out[mode] = {"skipped": f"{mode} autocast unsupported on CPU here: {err}"}
            else:
                out[mode] = {"error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc().splitlines()[-12:]}
                problems.append(f"{label} {mode}: {type(err).__name__}: {str(err)[:300]}")
            continue
        stats = compare(outputs, reference)
        out[mode] = stats
        # written as `not <=` so that a NaN (fp16 overflow) fails too
        if mode == "fp32" and not stats["max_abs_diff"] <= TOLERANCE["fp32_max_abs"]:
            problems.append(f"{label} fp32 max|diff| {stats['max_abs_diff']:.2e} > {TOLERANCE['fp32_max_abs']:.0e}")
        if mode != "fp32" and not stats["rel_err"] <= TOLERANCE[f"{mode}_rel"]:
            problems.append(f"{label} {mode} rel err {stats['rel_err']:.2e} > {TOLERANCE[f'{mode}_rel']:.0e}")
    del on_device
    return out


def guarded(res: Dict[str, Any], key: str, problems: List[str], fn: Callable[[], None]) -> None:
    """Run one part of a step; an exception is recorded under res[key] and the step's other parts still run."""
    try:
        fn()
    except Exception as err:  # noqa: BLE001
        res.setdefault(key, {}).update(error=f"{type(err).__name__}: {err}", traceback=traceback.format_exc().splitlines()[-15:])
        problems.append(f"{key}: {type(err).__name__}: {str(err)[:400]}")


def step_parity(check: Check, res: Dict[str, Any]) -> None:
    problems: List[str] = []
    fixtures = Path(check.args.fixtures) if check.args.fixtures else None
    sentences: List[List[str]] = random_sentences(30, seed=1, lengths=(5, 30))
    if fixtures is not None and (fixtures / "lm_weights.hdf5").is_file():
        raw = json.loads((fixtures / "sentences.json").read_text(encoding="utf8"))
        sentences = [s.split() for group in raw for s in group]
        some = sentences if check.is_cuda or not check.args.quick else sentences[:12]

        def fixture_cases() -> None:
            fixture = load_bilm(fixtures / "options.json", fixtures / "lm_weights.hdf5").eval()
            res["fixture_model"] = precision_cases(check, fixture, some, 8, problems, "fixture")

        guarded(res, "fixture_model", problems, fixture_cases)
        guarded(res, "bilm_tf_reference", problems, lambda: bilm_tf_reference(check, fixtures, raw, res, problems))
    else:
        res["fixture_model"] = {"skipped": f"no bilm-tf fixtures at {fixtures} (make gpu-data)"}
    guarded(res, "full_model", problems, lambda: full_model_cases(check, sentences, res, problems))
    full = res.get("full_model", {})
    res["headline"] = "fp32 max|diff| " + ", ".join(
        f"{name} {res[key]['fp32']['max_abs_diff']:.1e}" for name, key in (("fixture", "fixture_model"), ("full", "full_model"))
        if "max_abs_diff" in res.get(key, {}).get("fp32", {})) + "; rel err " + ", ".join(
        f"{m} {full[m]['rel_err']:.1e}" for m in ("bf16", "fp16") if "rel_err" in full.get(m, {})) + (
        f"; bilm-tf ref {res['bilm_tf_reference_max_abs_diff']:.1e}" if "bilm_tf_reference_max_abs_diff" in res else "")
    if problems:
        raise StepFailed("; ".join(problems))


def bilm_tf_reference(check: Check, fixtures: Path, raw: List[List[str]], res: Dict[str, Any], problems: List[str]) -> None:
    """bilm-tf's own outputs: 10 consecutive batches of 3, LSTM state carried (tests/bilm/test_bilm.py)."""
    import h5py

    stateful = load_bilm(fixtures / "options.json", fixtures / "lm_weights.hdf5", stateful=True).to(check.device)
    expected = []
    for k in range(3):
        with h5py.File(fixtures / f"lm_embeddings_{k}.hdf5", "r") as fin:
            expected.append([numpy.concatenate([fin[str(i)][0], fin[str(i)][1]], -1) for i in range(10)])
    worst = 0.0
    with matmul_precision(False):
        for i in range(10):
            batch = [raw[k][i].split() for k in range(3)]
            outputs = stateful.embed_sentences(batch, batch_size=3)
            worst = max(worst, max(float(numpy.abs(outputs[k][2] - expected[k][i]).max()) for k in range(3)))
    res["bilm_tf_reference_max_abs_diff"] = worst
    if not worst <= TOLERANCE["bilm_tf_max_abs"]:
        problems.append(f"bilm-tf reference max|diff| {worst:.2e} > {TOLERANCE['bilm_tf_max_abs']:.0e}")


def full_model_cases(check: Check, sentences: List[List[str]], res: Dict[str, Any], problems: List[str]) -> None:
    options = FULL if check.is_cuda else (QUICK_MODEL if check.args.quick else CPU_MODEL)
    start = time.perf_counter()
    big = random_bilm(options, check.work / "full_bilm")
    res["full_model"] = {"options": "2x4096_512_2048cnn_2xhighway" if options is FULL else
                         f"stand-in lstm {options.lstm_dim} proj {options.projection_dim} (CPU)",
                         "parameters": sum(p.numel() for p in big.parameters()),
                         "save_load_seconds": round(time.perf_counter() - start, 1)}
    # the throughput step reuses this model (writing and reading 380 MB of hdf5 once is enough)
    check.shared["full_bilm"], check.shared["full_options"] = big, options
    sentences_big = sentences if check.is_cuda or not check.args.quick else sentences[:8]
    res["full_model"].update(precision_cases(check, big, sentences_big, 16, problems, "full"))
    check.shared["full_bilm"] = big.to(check.device)


# ---- step c: throughput ------------------------------------------------------------------------------
def step_throughput(check: Check, res: Dict[str, Any]) -> None:
    bilm = check.shared.get("full_bilm")
    options = check.shared.get("full_options")
    if bilm is None:
        options = FULL if check.is_cuda else (QUICK_MODEL if check.args.quick else CPU_MODEL)
        bilm = random_bilm(options, check.work / "full_bilm_c")
    bilm = bilm.to(check.device).eval()
    flops = options.flops_per_token()
    peaks = check.shared.get("peaks", {})
    if check.is_cuda:
        plan = [(32, 5), (128, 4), (512, 2)]
        # bf16w: the biLM's own precision="bfloat16" (bf16 weights, fp32 gates and state, the in-place
        # inference path); bf16/fp16: autocast around the fp32 model (the autograd-shaped path)
        modes = ["fp32", "tf32", "bf16", "fp16", "bf16w"]
    else:
        plan = [(4, 1), (8, 1)] if check.args.quick else [(8, 3), (32, 2)]
        modes = ["fp32", "bf16", "bf16w"]
    res.update(mflop_per_token=round(flops / 1e6, 1), rows=[])
    for batch_size, iters in plan:
        sentences = random_sentences(batch_size * (iters + 1), seed=batch_size)
        batches = [sentences[i * batch_size : (i + 1) * batch_size] for i in range(iters + 1)]
        ids = [torch.as_tensor(batch_to_char_ids(b, options.max_characters_per_token), device=check.device) for b in batches]
        n_tokens = sum(len(s) for b in batches[1:] for s in b)
        for mode in modes:
            if check.args.quick and mode != "fp32" and batch_size != plan[0][0]:
                continue  # CPU bf16 is emulated and slow: once is enough to prove the path
            row: Dict[str, Any] = {"batch": batch_size, "mode": mode}
            res["rows"].append(row)
            if check.left() < 3:
                row["skipped"] = "budget"
                continue
            try:
                bilm.set_precision("bfloat16" if mode == "bf16w" else "float32", strict=mode == "bf16w")
                with torch.no_grad(), matmul_precision(mode == "tf32"), autocast(check.device, "fp32" if mode == "bf16w" else mode):
                    bilm(ids[0])  # warm-up (kernels, allocator) on a batch not timed
                    check.sync()
                    start = time.perf_counter()
                    for x in ids[1:]:
                        bilm(x).activations
                    check.sync()
                    seconds = time.perf_counter() - start
            except (RuntimeError, ValueError) as err:
                if mode == "bf16w":  # the newest path: record its failure, keep timing the others
                    row["failed"] = repr(err)[:300]
                    continue
                if check.is_cuda or mode == "fp32":
                    raise
                row["skipped"] = f"unsupported on CPU: {err}"
                continue
            rate = n_tokens / seconds
            peak = peaks.get("bf16" if mode == "bf16w" else mode)
            row.update(tokens=n_tokens, seconds=round(seconds, 4), tokens_per_s=round(rate, 1),
                       tflops=round(rate * flops / 1e12, 3), of_peak=round(rate * flops / 1e12 / peak, 4) if peak else None)
            check.say(f"   batch {batch_size:4d} {mode:5s} {rate:12,.0f} tokens/s" + (f"  {row['of_peak']:.1%} of {mode} peak" if peak else ""))
        del ids
    bilm.set_precision("float32")
    # the end-to-end API (char ids built on the CPU, outputs copied back) at one size, for the overhead
    if check.left() > 3:
        sentences = random_sentences(128 if check.is_cuda else 16, seed=7)
        with matmul_precision(False):
            bilm.embed_sentences(sentences[:8], batch_size=8)
            check.sync()
            start = time.perf_counter()
            bilm.embed_sentences(sentences, batch_size=len(sentences))
            check.sync()
        res["embed_sentences_fp32_tokens_per_s"] = round(sum(map(len, sentences)) / (time.perf_counter() - start), 1)
    timed = [r for r in res["rows"] if "tokens_per_s" in r]
    if not timed:
        raise StepFailed("no batch size / mode fitted in the budget")
    best = max(timed, key=lambda r: r["tokens_per_s"])
    res["headline"] = (f"best {best['tokens_per_s']:,.0f} tokens/s (batch {best['batch']} {best['mode']}"
                       + (f", {best['of_peak']:.1%} of peak)" if best.get("of_peak") else ")")
                       + f"; {sum('skipped' in r for r in res['rows'])} of {len(res['rows'])} skipped")
    check.shared.pop("full_bilm", None)  # frees the device for the subprocess steps


# ---- step: pretraining's LSTM Function against the per-op autograd reference, on the device ---------------
def lstm_train_pass(layer, x: torch.Tensor, batch_sizes: List[int], reference: bool, weights: List[torch.Tensor]):
    """One forward + backward of a ProjectedLSTM layer; returns (outputs, gradients) as float32."""
    x = x.detach().clone().requires_grad_()
    layer.zero_grad(set_to_none=True)
    B = x.shape[1]
    h, c = x.new_zeros(B, layer.proj_dim), x.new_zeros(B, layer.cell_dim)
    if reference:
        out, (hf, cf) = layer._forward_autograd_reference(x, batch_sizes, h, c)
    else:
        out, (hf, cf) = layer._forward_autograd(x, batch_sizes, h, c)
    loss = sum((w * t.float()).sum() for w, t in zip(weights, (out, hf, cf)))
    loss.backward()
    grads = {name: p.grad.float() for name, p in layer.named_parameters() if p.grad is not None}
    grads["x"] = x.grad.float()
    return out.detach().float(), grads


def step_lstm_train(check: Check, res: Dict[str, Any]) -> None:
    """The Function pretraining uses (bilm/lstm_train.py, manual BPTT) on the device: outputs and every gradient
    against the per-op autograd reference in fp32 (TF32 off) and bf16 autocast, then forward+backward time of each."""
    from spacy_elmo.bilm.lstm import ProjectedLSTM

    # configs/pretrain_gpu.cfg's LSTM (1024 cells, projection 256) on a 64-row batch of ragged rows
    D, C, P, B, T = (256, 1024, 256, 64, 40) if check.is_cuda else (32, 64, 32, 8, 20)
    torch.manual_seed(0)
    layer = ProjectedLSTM(D, C, P, cell_clip=3.0, proj_clip=3.0).to(check.device).train()
    lengths = sorted(torch.randint(T // 4, T + 1, (B,)).tolist(), reverse=True)
    lengths[0] = T
    batch_sizes = [sum(1 for n in lengths if n > t) for t in range(T)]
    x = torch.randn(T, B, D, device=check.device)
    for b, n in enumerate(lengths):
        x[n:, b] = 0
    weights = [torch.randn(T, B, P, device=check.device), torch.randn(B, P, device=check.device),
               torch.randn(B, C, device=check.device)]
    problems: List[str] = []
    res["shape"] = {"input": D, "cells": C, "projection": P, "batch": B, "steps": T, "tokens": sum(lengths)}
    for mode, limit in (("fp32", 1e-4), ("bf16", 5e-2)):
        if mode == "bf16" and not check.is_cuda and unsupported_reason("bfloat16", check.device):
            res[mode] = {"skipped": "no native bf16 on this CPU"}
            continue
        with matmul_precision(False), autocast(check.device, mode):
            out_new, grads_new = lstm_train_pass(layer, x, batch_sizes, False, weights)
            out_ref, grads_ref = lstm_train_pass(layer, x, batch_sizes, True, weights)
        errors = {"outputs": float((out_new - out_ref).norm() / out_ref.norm().clamp_min(1e-30))}
        errors.update({name: float((g - grads_ref[name]).norm() / grads_ref[name].norm().clamp_min(1e-30))
                       for name, g in grads_new.items()})
        worst = max(errors.values())
        res[mode] = {"rel_err": {k: float(f"{v:.2e}") for k, v in errors.items()}, "worst": worst}
        if set(grads_new) != set(grads_ref):
            problems.append(f"{mode}: gradients for {sorted(grads_new)} vs reference {sorted(grads_ref)}")
        if not worst <= limit:  # `not <=` so NaN fails
            problems.append(f"{mode}: worst relative error {worst:.2e} > {limit:.0e}")
    timings: Dict[str, float] = {}
    repeats = 10 if check.is_cuda else 3
    for mode in ("fp32", "bf16"):
        if "worst" not in res.get(mode, {}):
            continue
        for path, reference in (("function", False), ("reference", True)):
            with matmul_precision(True), autocast(check.device, mode):
                lstm_train_pass(layer, x, batch_sizes, reference, weights)
                check.sync()
                times = []
                for _ in range(repeats):
                    start = time.perf_counter()
                    lstm_train_pass(layer, x, batch_sizes, reference, weights)
                    check.sync()
                    times.append(time.perf_counter() - start)
            timings[f"{mode}_{path}_ms"] = round(1e3 * sorted(times)[len(times) // 2], 2)
    res["forward_backward_ms"] = timings
    res["headline"] = ("rel err vs autograd reference " + ", ".join(
        f"{m} {res[m]['worst']:.1e}" for m in ("fp32", "bf16") if "worst" in res.get(m, {})) + "; fwd+bwd ms " + ", ".join(
        f"{m} {timings[f'{m}_function_ms']} (ref {timings[f'{m}_reference_ms']})" for m in ("fp32", "bf16")
        if f"{m}_function_ms" in timings))
    if problems:
        raise StepFailed("; ".join(problems))


# ---- step d: spacy train -----------------------------------------------------------------------------
def synthetic_ner(directory: Path, n_train: int = 120, n_dev: int = 40) -> Path:
    """A small NER corpus from the pretraining grammar (people as PER, things as MISC), for machines without data."""
    import spacy
    from spacy.tokens import DocBin

    from spacy_elmo.pretrain import synthetic

    nlp = spacy.blank("en")
    rng = random.Random(0)
    people = set(synthetic.NOUNS) | set(synthetic.PLURAL.values())
    things = set(synthetic.OBJECTS) | {o + "s" for o in synthetic.OBJECTS}
    for name, n in (("train.spacy", n_train), ("dev.spacy", n_dev), ("test.spacy", n_dev)):
        docs = DocBin()
        for _ in range(n):
            words = synthetic.sentence(rng)
            doc = spacy.tokens.Doc(nlp.vocab, words=words)
            doc.ents = [doc.char_span(doc[i].idx, doc[i].idx + len(doc[i].text), label="PER" if w in people else "MISC")
                        for i, w in enumerate(words) if w in people or w in things]
            docs.add(doc)
        directory.mkdir(parents=True, exist_ok=True)
        docs.to_disk(directory / name)
    return directory


def find_ner_data(check: Check) -> Path:
    if check.args.ner_data == "synthetic":
        return synthetic_ner(check.work / "ner_synthetic")
    if check.args.ner_data:
        return Path(check.args.ner_data)
    for candidate in (ROOT / ".gpu" / "check" / "conll2003", ROOT / "corpus" / "conll2003"):
        if (candidate / "train.spacy").is_file() and (candidate / "dev.spacy").is_file():
            return candidate
    return synthetic_ner(check.work / "ner_synthetic")


def step_spacy_train(check: Check, res: Dict[str, Any]) -> None:
    import spacy
    from spacy.tokens import DocBin

    data = find_ner_data(check)
    train_file = data / ("train.spacy" if check.is_cuda or not check.args.quick else "train_10.spacy")
    if not train_file.is_file():
        train_file = data / "train.spacy"
    weights = check.work / "train_bilm"
    random_bilm(TRAIN_MODEL, weights, seed=3)
    output = check.work / "ner_elmo"
    steps = 100 if check.is_cuda else (4 if check.args.quick else 12)
    evals = steps // 2 if check.is_cuda or not check.args.quick else steps  # quick: one evaluation, at the end
    gpu = ["--gpu-id", "0", "--system.gpu_allocator", "pytorch"] if check.is_cuda else []
    res.update(data=str(data.relative_to(ROOT) if data.is_relative_to(ROOT) else data), train_file=train_file.name, max_steps=steps)
    check.sh(res, "train", [
        sys.executable, "-m", "spacy", "train", ROOT / "configs" / "ner_elmo.cfg", "--output", output,
        "--paths.train", train_file, "--paths.dev", data / "dev.spacy", "--paths.elmo_weights", weights,
        "--components.ner.model.tok2vec.embed.*.features.*.elmo.width", str(2 * TRAIN_MODEL.projection_dim),
        "--training.max_steps", str(steps), "--training.eval_frequency", str(evals), *gpu,
    ], cap=150 if check.is_cuda else 90)
    model = output / "model-best"
    meta = json.loads((model / "meta.json").read_text(encoding="utf8"))
    res["train_scores"] = {k: meta.get("performance", {}).get(k) for k in ("ents_f", "ents_p", "ents_r")}
    test_file = data / "test.spacy" if (data / "test.spacy").is_file() else data / "dev.spacy"
    docs = list(DocBin().from_disk(test_file).get_docs(spacy.blank("en").vocab))[:50]
    texts = [d.text for d in docs]
    problems: List[str] = []
    gpu_ents: List[Any] = []

    def on_gpu() -> None:
        """The trained pipeline on the GPU in this process: the elmo pipe must follow thinc onto cuda."""
        from thinc.api import set_gpu_allocator

        set_gpu_allocator("pytorch")
        spacy.require_gpu(0)
        try:
            nlp = spacy.load(model)
            gpu_docs = list(nlp.pipe(texts))
            res["gpu_elmo_device"] = str(next(nlp.get_pipe("elmo").bilm.parameters()).device)
            res["gpu_ner_ops"] = type(nlp.get_pipe("ner").model.ops).__name__
            gpu_ents.extend([(e.start, e.end, e.label_) for e in d.ents] for d in gpu_docs)
        finally:
            spacy.require_cpu()
        if not res["gpu_elmo_device"].startswith("cuda"):
            raise StepFailed(f"the elmo pipe ran on {res['gpu_elmo_device']} under require_gpu")

    if check.is_cuda:
        guarded(res, "gpu_load", problems, on_gpu)
    check.sh(res, "evaluate_cpu", [
        sys.executable, "-m", "spacy", "evaluate", model, test_file, "--output", check.work / "ner_eval.json"],
        cap=60)
    scores = json.loads((check.work / "ner_eval.json").read_text(encoding="utf8"))
    res["evaluate_cpu"].update(ents_f=scores.get("ents_f"), speed_words_per_s=scores.get("speed"))
    nlp = spacy.load(model)  # on CPU (this process's ops are numpy again)
    cpu_docs = list(nlp.pipe(texts))
    res["cpu_elmo_device"] = str(next(nlp.get_pipe("elmo").bilm.parameters()).device)
    res["cpu_docs"] = len(cpu_docs)
    res["cpu_entities"] = sum(len(d.ents) for d in cpu_docs)
    if gpu_ents:
        cpu_ents = [[(e.start, e.end, e.label_) for e in d.ents] for d in cpu_docs]
        res["gpu_cpu_same_entities"] = round(sum(a == b for a, b in zip(gpu_ents, cpu_ents)) / max(1, len(cpu_ents)), 3)
    if res["cpu_elmo_device"] != "cpu" or cpu_docs[0]._.elmo_layers is None:
        raise StepFailed(f"CPU load: elmo on {res['cpu_elmo_device']}, layers {cpu_docs[0]._.elmo_layers is not None}")
    res["headline"] = (f"train {res['train']['seconds']}s ({steps} steps, dev ents_f {res['train_scores']['ents_f']}); "
                       f"evaluate CPU ents_f {res['evaluate_cpu']['ents_f']}; load CPU ok"
                       + (f"; GPU elmo on {res['gpu_elmo_device']}, GPU/CPU same ents {res['gpu_cpu_same_entities']:.0%}" if gpu_ents else ""))
    if problems:
        raise StepFailed("; ".join(problems))


# ---- step e: pretrain --------------------------------------------------------------------------------
def step_pretrain(check: Check, res: Dict[str, Any]) -> None:
    from spacy_elmo.pretrain.synthetic import write_corpus

    corpus = check.work / "lm"
    write_corpus(corpus / "train.txt", 30000 if check.is_cuda else 3000, seed=0)
    write_corpus(corpus / "dev.txt", 300, seed=1)
    if check.is_cuda:
        config, precision, steps, more, ddp_steps = "pretrain_small.cfg", "bf16", 60, 20, 10
        extra = ["--gpu-id", "0", "--training.batch_tokens", "16000"]
    else:
        config, precision, steps, more, ddp_steps = "pretrain_tiny.cfg", "fp32", (6 if check.args.quick else 20), 3, 3
        extra = ["--training.threads", "1", "--training.batch_tokens", "400"]
    res.update(config=config, precision=precision)
    problems: List[str] = []

    def args(output: Path, max_steps: int, precision: str) -> List[str]:
        return ["pretrain", ROOT / "configs" / config, "--output", output, "--paths.train", corpus / "train.txt",
                "--paths.dev", corpus / "dev.txt", "--training.precision", precision, "--training.max_steps", str(max_steps),
                "--training.max_seconds", "0", "--training.eval_every", str(max_steps), "--training.checkpoint_every",
                str(max_steps), "--training.log_every", str(max(1, max_steps // 4)), "--training.eval_at_start", "false",
                "--corpus.dev_max_sentences", "200", *extra]

    def run(key: str, cmd: List[str], output: Path, expected_step: int, cap: float) -> bool:
        """One pretraining process; its failure is recorded and the later runs still go (one run, one finding)."""
        try:
            check.sh(res, key, cmd, cap=cap)
            metrics = json.loads((output / "metrics.json").read_text(encoding="utf8"))
            res[key].update(step=metrics["step"], tokens_per_s=float(metrics["tokens_per_second"]),
                            dev=metrics.get("dev"), stop_reason=metrics.get("stop_reason"))
            if metrics["step"] != expected_step:
                raise StepFailed(f"{key} ended at step {metrics['step']}, not {expected_step}")
            return True
        except Exception as err:  # noqa: BLE001
            problems.append(f"{key}: {err}" if isinstance(err, StepFailed) else f"{key}: {type(err).__name__}: {err}")
            res.setdefault(key, {})["error"] = problems[-1][:2000]
            return False

    output = check.work / "pretrain"
    ok = run("run", [sys.executable, "-m", "spacy_elmo", *args(output, steps, precision)], output, steps, 90 if check.is_cuda else 60)
    if ok:
        options = BiLMOptions.from_file(output / "options.json")
        peak = check.shared.get("peaks", {}).get("bf16" if precision == "bf16" else "fp32")
        # training FLOPs ~ 3 x forward (backward = 2 x forward); the softmax head is left out
        train_flops = 3 * options.flops_per_token()
        res["run"].update(mflop_per_token_train=round(train_flops / 1e6, 1),
                          mfu=round(res["run"]["tokens_per_s"] * train_flops / 1e12 / peak, 4) if peak else None)
    # if the configured precision failed, resume and torchrun go in fp32 so that their own paths are still checked
    later = precision if ok else "fp32"
    res["later_runs_precision"] = later
    if not ok and check.left() > 30:
        output = check.work / "pretrain_fp32"
        ok = run("run_fp32", [sys.executable, "-m", "spacy_elmo", *args(output, steps, later)], output, steps, 60)
    if ok:
        run("resume", [sys.executable, "-m", "spacy_elmo", *args(output, steps + more, later), "--resume"], output,
            steps + more, 60 if check.is_cuda else 45)
    # torchrun: one process per GPU (this machine has one; DistributedDataParallel wraps only with 2+)
    res["torchrun_note"] = "1 process: torchrun's env and launch path; the DDP wrap itself needs 2+ processes"
    run("torchrun", [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1",
                     "-m", "spacy_elmo", *args(check.work / "pretrain_ddp", ddp_steps, later)],
        check.work / "pretrain_ddp", ddp_steps, 60 if check.is_cuda else 45)
    first = res.get("run", {})
    res["headline"] = (f"{precision} " + (f"{first['tokens_per_s']:,.0f} tokens/s" if "tokens_per_s" in first else "FAILED")
                       + (f", MFU {first['mfu']:.1%}" if first.get("mfu") else "")
                       + f"; resume -> step {res.get('resume', {}).get('step', '-')}"
                       + f"; torchrun ({later}) -> step {res.get('torchrun', {}).get('step', '-')}")
    if problems:
        raise StepFailed("; ".join(p[:600] for p in problems))


STEPS = {"device": step_device, "parity": step_parity, "throughput": step_throughput, "lstm_train": step_lstm_train,
         "spacy_train": step_spacy_train, "pretrain": step_pretrain}


def print_table(check: Check) -> None:
    print("\n" + "=" * 100)
    meta = check.report["meta"]
    print(f"gpu_check on {meta.get('gpu', meta['device'])} | torch {meta['torch']} | spacy {meta['spacy']} | "
          f"thinc {meta['thinc']} | cupy {meta['cupy']} | {check.report['elapsed_seconds']}s of {check.args.budget_seconds}s")
    print(f"{'step':12s} {'status':8s} {'sec':>6s}  result")
    for name, r in check.report["steps"].items():
        text = r.get("results", {}).get("headline") or r.get("reason") or ""
        if r["status"] == "fail":
            text = (r.get("error") or "")[:300]
        print(f"{name:12s} {r['status']:8s} {r.get('seconds', 0):6.1f}  {text}")
    rows = check.report["steps"].get("throughput", {}).get("results", {}).get("rows", [])
    if rows:
        print("\nthroughput (forward, real tokens/s; fraction of the measured matmul peak of the same precision)")
        print(f"{'batch':>6s} {'mode':5s} {'tokens/s':>12s} {'TFLOP/s':>8s} {'of peak':>8s}")
        for r in rows:
            if "tokens_per_s" in r:
                frac = f"{r['of_peak']:.1%}" if r.get("of_peak") is not None else "-"
                print(f"{r['batch']:6d} {r['mode']:5s} {r['tokens_per_s']:12,.0f} {r['tflops']:8.2f} {frac:>8s}")
            else:
                print(f"{r['batch']:6d} {r['mode']:5s} {'skipped':>12s}")
    s = check.report["summary"]
    print(f"\n{s['ok']} ok, {s['fail']} fail, {s['skipped']} skipped; JSON {check.out}; log {check.log_path}")


def main() -> int:
    default_out = Path(os.environ["OUT"]) / "gpu_check.json" if os.environ.get("OUT") else ROOT / "metrics" / "gpu_check.json"
    default_fixtures = ROOT / ".gpu" / "fixtures"
    if not (default_fixtures / "lm_weights.hdf5").is_file():
        default_fixtures = Path.home() / ".cache" / "spacy-elmo-tests" / "allennlp-0.9.0-fixtures"
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--budget-seconds", type=float, default=210.0)
    parser.add_argument("--out", default=str(default_out))
    parser.add_argument("--quick", action="store_true", help="smallest sizes (the CPU test)")
    parser.add_argument("--steps", default=",".join(STEP_ORDER), help="comma-separated subset of " + ",".join(STEP_ORDER))
    parser.add_argument("--fixtures", default=str(default_fixtures), help="bilm-tf fixture folder (make gpu-data)")
    parser.add_argument("--ner-data", default="", help="folder with train.spacy/dev.spacy, or 'synthetic' "
                        "(default: .gpu/check/conll2003, else corpus/conll2003, else synthetic)")
    parser.add_argument("--work", default="", help="scratch folder (default: a new temporary one, kept)")
    args = parser.parse_args()
    args.steps = [s.strip() for s in args.steps.split(",") if s.strip()]
    unknown = set(args.steps) - set(STEP_ORDER)
    if unknown:
        parser.error(f"unknown steps {sorted(unknown)}")
    if args.device == "cpu":
        # keep spaCy/thinc subprocesses off any GPU a CPU run happens to sit next to
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    torch.manual_seed(0)
    check = Check(args)
    check.say(f"gpu_check: device {args.device}, budget {args.budget_seconds:.0f}s ({time.time() - check.t0:.0f}s already used), "
              f"JSON {check.out}, work {check.work}")
    for name in STEP_ORDER:
        check.run_step(name, lambda res, fn=STEPS[name]: fn(check, res))
    check.current_deadline = check.end
    check.write()
    print_table(check)
    return 0 if check.report["summary"]["fail"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
