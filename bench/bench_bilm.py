"""Speed of the biLM forward pass: tokens/s and the fraction of this machine's fp32 GEMM ceiling.

    python bench/bench_bilm.py [--model full|small] [--batch-sizes 1,8,32,128] [--threads N]

Random weights in the full 2x4096_512_2048cnn_2xhighway architecture are written with save_bilm and
read back with load_bilm (nothing is downloaded). Sentences have 5-40 tokens of random words. The GEMM
ceiling is measured in the same run: the best of several large square fp32 torch.mm calls.
"""
import argparse
import random
import string
import tempfile
import time
from typing import List

import torch

from spacy_elmo import BiLM, BiLMOptions, load_bilm, save_bilm

MODELS = {
    "full": BiLMOptions(),
    "small": BiLMOptions(lstm_dim=1024, projection_dim=128, filters=[(1, 32), (2, 32), (3, 64), (4, 128), (5, 256), (6, 512), (7, 1024)], n_highway=1),
}


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=sorted(MODELS), default="full")
    parser.add_argument("--batch-sizes", default="1,8,32,128")
    parser.add_argument("--min-tokens", type=int, default=3000, help="tokens timed per batch size")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    options = MODELS[args.model]
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        bilm = BiLM(options)
        with torch.no_grad():
            for p in bilm.parameters():
                p.normal_(0, 0.05)
        save_bilm(bilm, tmp)
        bilm = load_bilm(f"{tmp}/options.json", f"{tmp}/weights.hdf5")
    flops = options.flops_per_token()
    ceiling = gemm_gflops()
    print(f"model={args.model} forward MFLOP/token={flops / 1e6:.1f} threads={torch.get_num_threads()} "
          f"fp32 GEMM ceiling={ceiling:.1f} GFLOP/s")
    print(f"{'batch':>6} {'tokens':>7} {'seconds':>8} {'tokens/s':>9} {'GFLOP/s':>8} {'of ceiling':>10}")
    for batch_size in [int(b) for b in args.batch_sizes.split(",")]:
        n_sentences = max(batch_size, args.min_tokens // 22 // batch_size * batch_size)
        sentences = random_sentences(n_sentences, seed=batch_size)
        bilm.embed_sentences(sentences[:batch_size], batch_size=batch_size)  # warm-up
        start = time.perf_counter()
        bilm.embed_sentences(sentences, batch_size=batch_size)
        seconds = time.perf_counter() - start
        n_tokens = sum(len(s) for s in sentences)
        rate = n_tokens / seconds
        gflops = rate * flops / 1e9
        print(f"{batch_size:>6} {n_tokens:>7} {seconds:>8.2f} {rate:>9.1f} {gflops:>8.1f} {gflops / ceiling:>9.1%}")


if __name__ == "__main__":
    main()
