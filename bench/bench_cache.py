"""NER training time per epoch with the frozen, annotating `elmo` pipe: epoch 1 runs the biLM, epoch 2
reads its activations from the component's cache. The same loop with cache_size = 0 is the control.

    python bench/bench_cache.py [--sentences 120] [--epochs 2]

The loop is what `spacy train` does per step (nlp.update with annotates=["elmo"], elmo excluded from
updates), built from configs/ner_elmo.cfg with a mid-size random biLM (lstm 512, projection 128).
"""
import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

from spacy.tokens import Doc, Span
from spacy.training import Example
from spacy.util import load_config, load_model_from_config, minibatch

sys.path.insert(0, str(Path(__file__).parent))
from bench_component import mid_bilm_dir  # noqa: E402

CONFIG = Path(__file__).parent.parent / "configs" / "ner_elmo.cfg"


def make_data(nlp, n: int, seed: int = 0):
    rng = random.Random(seed)
    names = ["Alice", "Bob", "Carol", "Dmitri", "Eve", "Paris", "London", "Oslo", "Lagos", "Lima"]
    fillers = "the a went to and then saw met visited near with from after before today".split()
    data = []
    for _ in range(n):
        words, ents = [], []
        for _ in range(rng.randint(8, 30)):
            if rng.random() < 0.15:
                name = rng.choice(names)
                ents.append((len(words), "PER" if names.index(name) < 5 else "LOC"))
                words.append(name)
            else:
                words.append(rng.choice(fillers))
        doc = Doc(nlp.vocab, words=words)
        doc.ents = [Span(doc, i, i + 1, label) for i, label in ents]
        data.append(doc)
    return data


def run(weights: Path, cache_size: int, n_sentences: int, epochs: int):
    config = load_config(CONFIG, overrides={
        # elmo is left out of initialize below, so its weights come from the factory setting (read at first use)
        "paths.elmo_weights": str(weights), "components.elmo.weights": str(weights), "components.elmo.cache_size": cache_size,
        "components.ner.model.tok2vec.embed.*.features.*.elmo.width": 256,
    })
    nlp = load_model_from_config(config, auto_fill=True)
    gold = make_data(nlp, n_sentences)
    fresh = lambda: [Example(Doc(nlp.vocab, words=[t.text for t in d]), d) for d in gold]  # noqa: E731
    with nlp.select_pipes(disable=["elmo"]):
        optimizer = nlp.initialize(fresh)
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        for batch in minibatch(fresh(), size=16):  # new Example objects every epoch, as the corpus reader gives
            nlp.update(batch, sgd=optimizer, annotates=["elmo"], exclude=["elmo"], losses={})
        times.append(time.perf_counter() - start)
    return times, nlp.get_pipe("elmo").cache


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sentences", type=int, default=120)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        weights = mid_bilm_dir(Path(tmp))
        for label, size in (("cache on (1M tokens)", 1_000_000), ("cache off", 0)):
            times, cache = run(weights, size, args.sentences, args.epochs)
            epochs = ", ".join(f"epoch {i + 1}: {t:.2f} s" for i, t in enumerate(times))
            print(f"{label:22s} {epochs}  (cache hits {cache.hits}, tokens held {cache.n_tokens})")


if __name__ == "__main__":
    main()
