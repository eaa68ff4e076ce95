"""What a user sees: nlp.pipe words/s of the shipped ner configs, ELMo (float32, int8, bfloat16) against
spaCy's tok2vec ner, in one run on this machine.

    python bench/bench_pipeline.py [--sentences 1000] [--repeats 3] [--threads N]

The ELMo pipelines use the demo's biLM architecture (configs/pretrain_small.cfg's [model]) with random
weights, and both ner models are initialised on a few synthetic examples: speed depends on the shapes, not on
the weight values. Prints each pipeline's best of --repeats runs, its ratio to tok2vec and, for the lower
precisions and the token cache (token_cache_size, a serving setting), the ratio to float32 ELMo and the mean
cosine of their doc._.elmo_layers to float32's. Each pipeline runs over the text once before it is timed, so
the token cache is timed with every word type of the text seen: its best case.
"""
import argparse
import random
import tempfile
from pathlib import Path
from typing import Dict, List

import numpy
import spacy
import torch
from spacy.training import Example
from spacy.util import load_config, load_model_from_config
from thinc.api import Config

from spacy_elmo import BiLMOptions
from spacy_elmo.bilm.precision import cpu_flags, unsupported_reason

from bench_component import best_of, random_bilm_dir  # beside this file: python puts bench/ on the path

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"
LABELS = ("PER", "ORG", "LOC", "MISC")


def demo_bilm_dir(root: Path) -> Path:
    """The demo's biLM architecture with random weights."""
    model = dict(load_config(CONFIGS / "pretrain_small.cfg")["model"])
    model.pop("dropout", None)
    return random_bilm_dir(BiLMOptions(**model), root / "demo_bilm")


def sentences(n: int, seed: int = 0) -> List[str]:
    """News-like sentences: capitalised names, numbers and punctuation, 8-40 words, ~24 on average."""
    rng = random.Random(seed)
    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 10))) for _ in range(8000)]
    out = []
    for _ in range(n):
        tokens = [rng.choice(words).capitalize() if rng.random() < 0.15 else rng.choice(words) for _ in range(rng.randint(8, 40))]
        tokens += [str(rng.randint(1, 2000))] if rng.random() < 0.3 else []
        out.append(" ".join(tokens) + " .")
    return out


TOKEN_CACHE = 50_000


def build(config_file: Path, weights: Path, directory: Path, precision: str = "float32", token_cache_size: int = 0) -> spacy.Language:
    """The config's pipeline, initialised, saved and loaded back with spacy.load: served as a user would
    serve model-best (the activation cache is training-only, so every run computes its features; the token
    cache, when set, is turned on at spacy.load as a user turns it on for a saved pipeline)."""
    overrides: Dict[str, object] = {}
    if "elmo" in config_file.name:
        overrides = {"paths.elmo_weights": str(weights), "components.elmo.precision": precision}
    config = load_config(config_file, overrides=overrides, interpolate=False)
    nlp = load_model_from_config(Config(config), auto_fill=True, validate=True)
    examples = []
    for i, text in enumerate(sentences(40, seed=1)):
        doc = nlp.make_doc(text)
        entities = [(doc[0].idx, doc[1].idx + len(doc[1]), LABELS[i % len(LABELS)])]
        examples.append(Example.from_dict(doc, {"entities": entities}))
    nlp.initialize(lambda: examples)
    nlp.to_disk(directory)
    config_overrides: Dict[str, object] = {}
    if "elmo" in config_file.name:
        config_overrides = {"components.elmo.precision": precision, "components.elmo.token_cache_size": token_cache_size}
    return spacy.load(directory, config=config_overrides)


def mean_cosine(a: numpy.ndarray, b: numpy.ndarray) -> float:
    dots = (a * b).sum(-1)
    norms = numpy.linalg.norm(a, axis=-1) * numpy.linalg.norm(b, axis=-1)
    return float((dots / numpy.maximum(norms, 1e-12)).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sentences", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    texts = sentences(args.sentences)
    print(f"CPU: {torch.cpu.get_capabilities().get('cpu_name', '?')}; precision features: "
          f"{', '.join(sorted(cpu_flags() & {'avx2', 'avx512_bf16', 'amx_bf16', 'avx512_vnni', 'avx_vnni', 'amx_int8'})) or 'none'}; "
          f"torch {torch.__version__}, {args.threads} thread(s)")
    with tempfile.TemporaryDirectory() as tmp:
        weights = demo_bilm_dir(Path(tmp))
        runs = [("tok2vec ner", CONFIGS / "ner_tok2vec.cfg", "float32", 0)]
        for precision in ("float32", "int8", "bfloat16"):
            reason = unsupported_reason(precision, torch.device("cpu"))
            if reason:
                print(f"ELMo ner {precision}: skipped ({reason})")
                continue
            runs.append((f"ELMo ner {precision}", CONFIGS / "ner_elmo.cfg", precision, 0))
        runs.append((f"ELMo ner float32 + token cache {TOKEN_CACHE}", CONFIGS / "ner_elmo.cfg", "float32", TOKEN_CACHE))
        n_words = 0
        rates: Dict[str, float] = {}
        layers: Dict[str, List[numpy.ndarray]] = {}
        for name, config_file, precision, token_cache_size in runs:
            nlp = build(config_file, weights, Path(tmp) / name.replace(" ", "_").replace("+", "plus"), precision, token_cache_size)
            # Warm up on the whole text: every run is timed in the steady state, the token cache's with every
            # word type seen (its best case; a stream with new words computes those).
            docs = list(nlp.pipe(texts))
            n_words = sum(len(doc) for doc in docs)
            docs = docs[:50]
            seconds = best_of(args.repeats, lambda: list(nlp.pipe(texts)))
            rates[name] = n_words / seconds
            if "ELMo" in name:
                layers[name] = [numpy.asarray(doc._.elmo_layers, dtype=numpy.float32) for doc in docs]
        base = rates["tok2vec ner"]
        exact = rates.get("ELMo ner float32")
        print(f"{n_words:,} words in {len(texts):,} sentences, nlp.pipe, best of {args.repeats}")
        for name, rate in rates.items():
            line = f"{name:>36}: {rate:9,.0f} words/s  {rate / base:5.2f}x tok2vec"
            if exact and "ELMo" in name and name != "ELMo ner float32":
                cosine = numpy.mean([mean_cosine(a, b) for a, b in zip(layers["ELMo ner float32"], layers[name])])
                line += f"  {rate / exact:5.2f}x float32 ELMo, mean cosine to float32 {cosine:.4f}"
            print(line)


if __name__ == "__main__":
    main()
