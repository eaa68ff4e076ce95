"""Speed of the biLM forward pass: tokens/s and the fraction of this machine's fp32 GEMM ceiling, per precision,
optionally side by side with AllenNLP's _ElmoBiLm in the same run.

    python bench/bench_bilm.py [--model full|small] [--batch-sizes 1,8,32,128] [--threads N]
                               [--precisions float32,bfloat16,int8]
                               [--compare-allennlp [--allennlp-batch-sizes 32]]

Random weights in the full 2x4096_512_2048cnn_2xhighway architecture are written with save_bilm and
read back with load_bilm (nothing is downloaded), once per precision. Sentences have 5-40 tokens of random
words; each batch size gets its own sentences, the same for every precision and for AllenNLP. The GEMM
ceiling is measured in the same run: the best of several large square fp32 torch.mm calls; GFLOP/s for
bfloat16 and int8 count the same float32 FLOPs per token, so their fraction of the fp32 ceiling can pass 100%.

--compare-allennlp runs AllenNLP 2.10.1's _ElmoBiLm (float32) on the same weight files, sentences, batch sizes
(--allennlp-batch-sizes: it is slow at batch 1) and torch thread count, in its own venv under the user cache,
built on first use (bench/allennlp_reference.py: a few minutes, once). It first checks parity: AllenNLP's
layer outputs against each precision's on a handful of sentences (max |diff| and mean cosine per layer).
"""
import argparse
import random
import string
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Tuple

import torch

from spacy_elmo import BiLM, BiLMOptions, load_bilm, save_bilm
from spacy_elmo.bilm.precision import PRECISIONS, cpu_flags, unsupported_reason

MODELS = {
    "full": BiLMOptions(),
    "small": BiLMOptions(lstm_dim=1024, projection_dim=128, filters=[(1, 32), (2, 32), (3, 64), (4, 128), (5, 256), (6, 512), (7, 1024)], n_highway=1),
}
FLAGS = ["avx2", "avx512f", "avx512_bf16", "avx512_vnni", "avx_vnni", "amx_bf16", "amx_int8"]


def gemm_gflops(n: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def random_sentences(n: int, seed: int = 0) -> List[List[str]]:
    rng = random.Random(seed)
    words = ["".join(rng.choices(string.ascii_letters, k=rng.randint(1, 12))) for _ in range(5000)]
    return [[rng.choice(words) for _ in range(rng.randint(5, 40))] for _ in range(n)]


def sentences_for(batch_size: int, min_tokens: int) -> List[List[str]]:
    n_sentences = max(batch_size, min_tokens // 22 // batch_size * batch_size)
    return random_sentences(n_sentences, seed=batch_size)


def write_random_bilm(options: BiLMOptions, directory: str) -> Tuple[Path, Path]:
    """Random weights (seed 0, N(0, 0.05)) written as bilm-tf files: (options.json, weights.hdf5)."""
    torch.manual_seed(0)
    bilm = BiLM(options)
    with torch.no_grad():
        for p in bilm.parameters():
            p.normal_(0, 0.05)
    save_bilm(bilm, directory)
    return Path(directory) / "options.json", Path(directory) / "weights.hdf5"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def time_ours(bilm: BiLM, sentences: List[List[str]], batch_size: int) -> float:
    bilm.embed_sentences(sentences[:batch_size], batch_size=batch_size)  # warm-up
    start = time.perf_counter()
    bilm.embed_sentences(sentences, batch_size=batch_size)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=sorted(MODELS), default="full")
    parser.add_argument("--batch-sizes", default="1,8,32,128")
    parser.add_argument("--min-tokens", type=int, default=3000, help="tokens timed per batch size")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--precisions", default=",".join(PRECISIONS), help="comma-separated, of " + ", ".join(PRECISIONS))
    parser.add_argument("--compare-allennlp", action="store_true", help="AllenNLP 2.10.1 _ElmoBiLm in the same run")
    parser.add_argument("--allennlp-batch-sizes", default="32", help="batch sizes AllenNLP is timed at")
    parser.add_argument("--allennlp-venv", type=Path, help="where its venv lives (default: the user cache)")
    parser.add_argument("--allennlp-python", type=Path, help="an existing python with allennlp 2.10.1 (no venv built)")
    args = parser.parse_args()
    precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    for p in precisions:
        if p not in PRECISIONS:
            parser.error(f"unknown precision {p!r}: use {', '.join(PRECISIONS)}")
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    allennlp_batch_sizes = [int(b) for b in args.allennlp_batch_sizes.split(",")] if args.compare_allennlp else []
    if args.threads:
        torch.set_num_threads(args.threads)
    options = MODELS[args.model]
    cpu = torch.device("cpu")
    flags = cpu_flags()
    print(f"machine: {cpu_model()}; flags: {' '.join(f for f in FLAGS if f in flags) or 'none of ' + ' '.join(FLAGS)}; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    runnable = []
    for p in precisions:
        reason = unsupported_reason(p, cpu)
        if reason:
            print(f"{p}: skipped, {reason}")
        else:
            runnable.append(p)

    with tempfile.TemporaryDirectory() as tmp:
        options_file, weight_file = write_random_bilm(options, tmp)
        models = {p: load_bilm(options_file, weight_file, precision=p) for p in runnable}
        reference: Dict = {}
        if args.compare_allennlp:
            sys.path.insert(0, str(Path(__file__).resolve().parent))
            import allennlp_reference as ref

            python = args.allennlp_python or ref.ensure_venv(args.allennlp_venv or ref.DEFAULT_VENV)
            runs = [{"batch_size": b, "sentences": sentences_for(b, args.min_tokens)} for b in allennlp_batch_sizes]
            reference = ref.run_reference(python, options_file, weight_file, torch.get_num_threads(), runs=runs,
                                          parity_sentences=ref.PARITY_SENTENCES)
            print(f"AllenNLP {reference['allennlp']}: torch {reference['torch']}, {reference['threads']} threads")
            scale = max(float(abs(a).max()) for a in reference["parity"])
            print(f"parity vs AllenNLP float32 ({len(ref.PARITY_SENTENCES)} sentences, one batch, fresh state; "
                  f"max |activation| {scale:.2f}):")
            for p, bilm in models.items():
                ours = bilm.embed_sentences(ref.PARITY_SENTENCES, batch_size=len(ref.PARITY_SENTENCES))
                print(f"  {p:>9}: {ref.format_comparison(ref.compare_layers(ours, reference['parity']))}")
        allennlp_rate = {r["batch_size"]: r["tokens"] / r["seconds"] for r in reference.get("runs", [])}

        flops = options.flops_per_token()
        ceiling = gemm_gflops()
        print(f"model={args.model} forward MFLOP/token={flops / 1e6:.1f} threads={torch.get_num_threads()} "
              f"fp32 GEMM ceiling={ceiling:.1f} GFLOP/s")
        print(f"{'batch':>6} {'precision':>15} {'tokens':>7} {'seconds':>8} {'tokens/s':>9} {'GFLOP/s':>8} "
              f"{'of ceiling':>10} {'x AllenNLP':>10}")

        def row(batch_size: int, label: str, n_tokens: int, seconds: float) -> None:
            rate = n_tokens / seconds
            gflops = rate * flops / 1e9
            ratio = f"{rate / allennlp_rate[batch_size]:.2f}x" if batch_size in allennlp_rate else "-"
            print(f"{batch_size:>6} {label:>15} {n_tokens:>7} {seconds:>8.2f} {rate:>9.1f} {gflops:>8.1f} "
                  f"{gflops / ceiling:>9.1%} {ratio:>10}", flush=True)

        for batch_size in batch_sizes + [b for b in allennlp_batch_sizes if b not in batch_sizes]:
            for r in reference.get("runs", []):
                if r["batch_size"] == batch_size:
                    row(batch_size, "allennlp fp32", r["tokens"], r["seconds"])
            if batch_size not in batch_sizes:
                continue
            sentences = sentences_for(batch_size, args.min_tokens)
            n_tokens = sum(len(s) for s in sentences)
            for p, bilm in models.items():
                row(batch_size, p, n_tokens, time_ours(bilm, sentences, batch_size))


if __name__ == "__main__":
    main()
