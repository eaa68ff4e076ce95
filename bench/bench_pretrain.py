"""Pretraining throughput: training tokens/s of a config, and the fraction of this machine's fp32 GEMM
ceiling it reaches (measured in the same run with a large torch.mm).

    python bench/bench_pretrain.py [--config configs/pretrain_small.cfg] [--steps 15] [--corpus corpus/lm/train.txt]

A/B of the LSTM training path: --lstm-paths new,reference runs every precision with each path (the
reference is the per-op autograd ProjectedLSTM._forward_autograd_reference, selected through
SPACY_ELMO_LSTM_TRAIN=reference), interleaved, --rounds times; the medians are reported.

FLOPs per token = 3 x forward (forward + backward of activations and weights), forward = the biLM's
BiLMOptions.flops_per_token() + the softmax (2 directions x 2 x (negatives + 1) x projection_dim for
sampled, x vocabulary for full). Tokens counted are the positions the biLM computes: words + <S> + </S>.
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from spacy_elmo.bilm.chars import batch_to_char_ids  # noqa: E402
from spacy_elmo.bilm.heads import make_head  # noqa: E402
from spacy_elmo.pretrain.config import bilm_options, load_config  # noqa: E402
from spacy_elmo.pretrain.corpus import Corpus, batches_by_tokens, take  # noqa: E402
from spacy_elmo.pretrain.training_bilm import TrainingBiLM  # noqa: E402
from spacy_elmo.pretrain.train import LanguageModel, training_precision  # noqa: E402
from spacy_elmo.pretrain.vocab import build_vocab  # noqa: E402


def gemm_rate(n: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(repeats):
            torch.mm(a, b)
        best = min(best, (time.perf_counter() - start) / repeats)
    return 2 * n**3 / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(ROOT / "configs" / "pretrain_small.cfg"))
    parser.add_argument("--corpus", default=str(ROOT / "corpus" / "lm" / "train.txt"))
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--batch-tokens", type=int, default=None,
                        help="training.batch_tokens instead of the config's (BENCHMARKS.md says which size each "
                             "figure was measured at)")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--precisions", default=None,
                        help="comma-separated fp32,bf16,fp16 measured one after another in this run "
                             "(default: the config's training.precision)")
    parser.add_argument("--lstm-paths", default="new",
                        help="comma-separated new,reference: the LSTM training path(s) to measure, interleaved")
    parser.add_argument("--rounds", type=int, default=1,
                        help="repeat every (precision, path) measurement this many times, interleaved; report medians")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    config = load_config(args.config)
    if args.batch_tokens:
        config["training"]["batch_tokens"] = args.batch_tokens
    corpus_path = Path(args.corpus)
    if not corpus_path.exists():
        from spacy_elmo.pretrain.synthetic import write_corpus

        corpus_path = write_corpus(Path("/tmp/spacy_elmo_bench/train.txt"), 20000)
        print(f"{args.corpus} not found: using a synthetic corpus {corpus_path}")
    corpus = Corpus(corpus_path, max_length=int(config["corpus"]["max_length"]))
    sentences = take(corpus, 20000)
    vocab = build_vocab(sentences, max_size=int(config["vocab"]["max_size"]), min_count=int(config["vocab"]["min_count"]))
    batches = list(batches_by_tokens(sentences, int(config["training"]["batch_tokens"]), seed=0))[: args.steps + 2]
    options = bilm_options(config)
    precisions = [p.strip() for p in (args.precisions or str(config["training"]["precision"])).split(",")]
    precisions = [training_precision(p, torch.device("cpu")) for p in precisions]  # "auto" as the trainer runs it
    paths = [p.strip() for p in args.lstm_paths.split(",")]
    combos = [(precision, path) for precision in precisions for path in paths]
    runs: dict = {combo: [] for combo in combos}
    for _ in range(args.rounds):
        for precision, path in combos:
            runs[(precision, path)].append(measure(args.config, config, options, vocab, batches, precision, path))
    results = []
    for combo in combos:
        by_speed = sorted(runs[combo], key=lambda r: r["words_per_second"])
        result = dict(by_speed[len(by_speed) // 2])  # the median run (the upper one of an even count)
        if args.rounds > 1:
            result["rounds_words_per_second"] = [r["words_per_second"] for r in runs[combo]]
            result["rounds_words_per_cpu_second"] = [r["words_per_cpu_second"] for r in runs[combo]]
            cpu = sorted(result["rounds_words_per_cpu_second"])
            result["median_words_per_cpu_second"] = cpu[len(cpu) // 2]
        results.append(result)
    def cpu_rate(result: dict) -> float:
        return result.get("median_words_per_cpu_second", result["words_per_cpu_second"])

    base = results[0]
    for result in results[1:]:
        suffix = base["precision"] + ("" if len(paths) == 1 else "_" + base["lstm_path"])
        result["words_per_second_vs_" + suffix] = round(result["words_per_second"] / base["words_per_second"], 3)
        result["words_per_cpu_second_vs_" + suffix] = round(cpu_rate(result) / cpu_rate(base), 3)
    if len(paths) > 1:  # each path against the first path at the same precision
        for result in results:
            same = next(r for r in results if r["precision"] == result["precision"] and r["lstm_path"] == paths[0])
            if result is not same:
                result["words_per_second_vs_" + paths[0] + "_path"] = round(result["words_per_second"] / same["words_per_second"], 3)
                result["words_per_cpu_second_vs_" + paths[0] + "_path"] = round(cpu_rate(result) / cpu_rate(same), 3)
    print(json.dumps(results if len(results) > 1 else results[0], indent=2))


def measure(config_path: str, config, options, vocab, batches, precision: str, lstm_path: str = "new") -> dict:
    """Train a fresh model (same seed, same batches) for the batches after two warm-up steps."""
    if lstm_path == "reference":
        os.environ["SPACY_ELMO_LSTM_TRAIN"] = "reference"
    elif lstm_path == "new":
        os.environ.pop("SPACY_ELMO_LSTM_TRAIN", None)
    else:
        raise ValueError(f"--lstm-paths: new or reference, not {lstm_path!r}")
    s = config["softmax"]
    torch.manual_seed(0)
    model = LanguageModel(TrainingBiLM(options, dropout=float(config["model"]["dropout"])),
                          make_head(s["type"], options.projection_dim, len(vocab), n_samples=int(s["n_samples"]),
                                    cutoffs=list(s["cutoffs"]), div_value=float(s["div_value"])),
                          dropout=float(config["model"]["dropout"]))
    T = config["training"]
    if T["optimizer"] == "adam":
        optimizer = torch.optim.Adam(model.parameters(), lr=float(T["learning_rate"]))
    else:
        optimizer = torch.optim.Adagrad(model.parameters(), lr=float(T["learning_rate"]),
                                        initial_accumulator_value=float(T["initial_accumulator_value"]))
    max_chars = options.max_characters_per_token

    low = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)

    def step(batch) -> None:
        ids = torch.from_numpy(batch_to_char_ids(batch, max_chars))
        with torch.autocast("cpu", dtype=low or torch.bfloat16, enabled=low is not None):
            loss, _, _ = model(ids, vocab.target_ids(batch))
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        optimizer.step()

    for batch in batches[:2]:  # warm-up
        step(batch)
    gemm_before = gemm_rate()
    words = positions = 0
    start, cpu_start = time.perf_counter(), time.process_time()
    for batch in batches[2:]:
        step(batch)
        words += sum(map(len, batch))
        positions += sum(len(x) + 2 for x in batch)
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start
    gemm = max(gemm_before, gemm_rate())
    P = options.projection_dim
    if s["type"] == "sampled":
        softmax_flops = 2 * 2 * (int(s["n_samples"]) + 1) * P
    elif s["type"] == "adaptive":  # the head (shortlist + one logit per tail cluster) for every token;
        # tail clusters only for their share of the tokens (measured on this batch set), at reduced width
        cutoffs = list(model.head.softmax.cutoffs)
        targets = torch.cat([vocab.target_ids(b).flatten() for b in batches[2:]])
        targets = targets[targets >= 0]
        head_flops = 2 * (cutoffs[0] + len(cutoffs) - 1) * P
        tail_flops = 0.0
        for i, tail in enumerate(model.head.softmax.tail):
            share = float(((targets >= cutoffs[i]) & (targets < cutoffs[i + 1])).float().mean())
            hidden = tail[0].out_features
            tail_flops += share * 2 * (P * hidden + hidden * (cutoffs[i + 1] - cutoffs[i]))
        softmax_flops = 2 * (head_flops + tail_flops)
    else:
        softmax_flops = 2 * 2 * len(vocab) * P
    forward_flops = options.flops_per_token() + softmax_flops
    train_flops = 3 * forward_flops
    achieved = positions / seconds * train_flops
    return {
        "config": str(config_path),
        "precision": precision,
        "lstm_path": lstm_path,
        "threads": torch.get_num_threads(),
        "steps": len(batches) - 2,
        "batch_tokens": int(config["training"]["batch_tokens"]),
        "words_per_second": round(words / seconds, 1),
        "positions_per_second": round(positions / seconds, 1),
        # words per second of this process's CPU time (all its threads): with --threads 1 on a shared
        # machine, less sensitive than wall time to the other processes that take the core away
        "words_per_cpu_second": round(words / cpu_seconds, 1),
        "forward_mflop_per_token": round(forward_flops / 1e6, 3),
        "bilm_forward_mflop_per_token": round(options.flops_per_token() / 1e6, 3),
        "softmax_forward_mflop_per_token": round(softmax_flops / 1e6, 3),
        "achieved_gflops": round(achieved / 1e9, 2),
        "gemm_gflops": round(gemm / 1e9, 2),
        "fraction_of_gemm_ceiling": round(achieved / gemm, 4),
    }


if __name__ == "__main__":
    main()
