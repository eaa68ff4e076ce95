"""nlp.pipe words/s with the `elmo` component vs BiLM.embed_sentences alone on the same tokens, and the
stored bytes per token in float16 vs float32.

    python bench/bench_component.py [--sentences 200] [--repeats 2]

Uses a mid-size random biLM (lstm 512, projection 128) saved with save_bilm: speed does not depend on
the weight values. Reports the best of --repeats runs of each.
"""
import argparse
import random
import tempfile
import time
from pathlib import Path
from typing import Callable

import spacy
import torch
from spacy.tokens import Doc

from spacy_elmo import BiLM, BiLMOptions, load_bilm, save_bilm

MID_OPTIONS = dict(lstm_dim=512, projection_dim=128, n_layers=2, char_dim=16,
                   filters=[(1, 32), (2, 32), (3, 64), (4, 128), (5, 256)], n_highway=1)


def random_bilm_dir(options: BiLMOptions, directory: Path) -> Path:
    """A biLM of these options with N(0, 0.1) weights, saved with save_bilm: speed depends on shapes only."""
    torch.manual_seed(0)
    bilm = BiLM(options)
    with torch.no_grad():
        for p in bilm.parameters():
            p.normal_(0.0, 0.1)
    return save_bilm(bilm, directory)


def mid_bilm_dir(root: Path) -> Path:
    return random_bilm_dir(BiLMOptions(**MID_OPTIONS), root / "mid_bilm")


def corpus(n_sentences: int, seed: int = 0):
    rng = random.Random(seed)
    vocab = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(1, 10))) for _ in range(5000)]
    return [[rng.choice(vocab) for _ in range(rng.randint(5, 40))] for _ in range(n_sentences)]


def best_of(repeats: int, fn: Callable[[], object]) -> float:
    """The fastest of `repeats` calls, in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sentences", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    sentences = corpus(args.sentences)
    n_words = sum(map(len, sentences))
    with tempfile.TemporaryDirectory() as tmp:
        weights = mid_bilm_dir(Path(tmp))
        bilm = load_bilm(weights / "options.json", weights / "weights.hdf5")
        nlp = spacy.blank("en")
        nlp.add_pipe("elmo", config={"weights": str(weights), "dtype": "float16"})
        nlp32 = spacy.blank("en")
        nlp32.add_pipe("elmo", config={"weights": str(weights), "dtype": "float32"})
        docs = lambda: [Doc(nlp.vocab, words=words) for words in sentences]  # noqa: E731
        run_bilm = lambda: bilm.embed_sentences(sentences, batch_size=64)  # noqa: E731
        prebuilt = docs()  # tokenisation is not the component's cost; re-annotating overwrites
        run_pipe = lambda: list(nlp.pipe(prebuilt, batch_size=256))  # noqa: E731
        bilm.embed_sentences(sentences[:64])  # warm up both paths
        list(nlp.pipe(docs()[:64]))
        nlp.get_pipe("elmo").cache.clear()
        t_bilm, t_pipe = float("inf"), float("inf")
        for _ in range(args.repeats):  # alternate so that machine load hits both alike
            t_bilm = min(t_bilm, best_of(1, run_bilm))
            t_pipe = min(t_pipe, best_of(1, run_pipe))
        out16 = list(nlp.pipe(docs()[:200]))
        out32 = list(nlp32.pipe(docs()[:200]))
    tokens = sum(len(d) for d in out16)
    print(f"torch threads: {torch.get_num_threads()}; {len(sentences)} sentences, {n_words} words; biLM {MID_OPTIONS['lstm_dim']}/{MID_OPTIONS['projection_dim']}")
    print(f"BiLM.embed_sentences(batch_size=64): {n_words / t_bilm:10.0f} words/s ({t_bilm:.2f} s)")
    print(f"nlp.pipe with elmo (float16):        {n_words / t_pipe:10.0f} words/s ({t_pipe:.2f} s)")
    print(f"overhead of the component: {100 * (t_pipe / t_bilm - 1):+.1f}% (target <= 15%)")
    print(f"stored bytes/token: float16 {sum(d._.elmo_layers.nbytes for d in out16) / tokens:.0f}, "
          f"float32 {sum(d._.elmo_layers.nbytes for d in out32) / tokens:.0f} (n_layers+1 = 3, D = 256)")


if __name__ == "__main__":
    main()
