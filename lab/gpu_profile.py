"""Where the full-size biLM's forward pass spends its time on a device: torch.profiler's op table.

    python3 lab/gpu_profile.py [--device cuda] [--batch-sizes 32,512] [--out $OUT/gpu_profile.txt]

Random weights (the model's own init) in the 2x4096_512_2048cnn_2xhighway shape, sentences of 5-40 random
words, one warm-up batch, then one profiled batch per size and precision mode. Prints the ops by device
time (self), so that the next change to the GPU path aims at what costs most.
"""
import argparse
import os
import random
import string
import sys
import time
from pathlib import Path
from typing import List

import torch
from torch.profiler import ProfilerActivity, profile

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from spacy_elmo import BiLM, BiLMOptions  # noqa: E402
from spacy_elmo.bilm.chars import batch_to_char_ids  # noqa: E402


def random_sentences(n: int, seed: int) -> List[List[str]]:
    rng = random.Random(seed)
    words = ["".join(rng.choices(string.ascii_letters, k=rng.randint(1, 12))) for _ in range(5000)]
    return [[rng.choice(words) for _ in range(rng.randint(5, 40))] for _ in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-sizes", default="32,512")
    parser.add_argument("--modes", default="fp32,tf32,bf16w")
    parser.add_argument("--small", action="store_true", help="a small biLM (for a CPU smoke run)")
    parser.add_argument("--rows", type=int, default=18)
    default_out = Path(os.environ["OUT"]) / "gpu_profile.txt" if os.environ.get("OUT") else ROOT / "metrics" / "gpu_profile.txt"
    parser.add_argument("--out", type=Path, default=default_out)
    args = parser.parse_args()
    device = torch.device(args.device)
    options = BiLMOptions(lstm_dim=256, projection_dim=64, filters=[(1, 16), (2, 16)], n_highway=1) if args.small else BiLMOptions()
    torch.manual_seed(0)
    bilm = BiLM(options).to(device).eval()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    sort_key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    lines: List[str] = [f"device {torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}; torch {torch.__version__}"]

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for batch_size in [int(b) for b in args.batch_sizes.split(",")]:
        batches = [random_sentences(batch_size, seed=batch_size + i) for i in range(2)]
        ids = [torch.as_tensor(batch_to_char_ids(b, options.max_characters_per_token), device=device) for b in batches]
        n_tokens = sum(len(s) for s in batches[1])
        for mode in args.modes.split(","):
            bilm.set_precision("bfloat16" if mode == "bf16w" else "float32")
            if device.type == "cuda":
                torch.backends.cuda.matmul.allow_tf32 = mode == "tf32"
            with torch.no_grad():
                bilm(ids[0])
                sync()
                start = time.perf_counter()
                bilm(ids[1])
                sync()
                seconds = time.perf_counter() - start
                with profile(activities=activities) as prof:
                    bilm(ids[1])
                    sync()
            lines.append(f"\n== batch {batch_size} {mode}: {n_tokens} tokens in {seconds * 1000:.1f} ms "
                         f"= {n_tokens / seconds:,.0f} tokens/s (unprofiled)")
            lines.append(prof.key_averages().table(sort_by=sort_key, row_limit=args.rows, max_name_column_width=48))
            print(lines[-2], flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
