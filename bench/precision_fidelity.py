"""Downstream fidelity of the inference precisions: pipelines trained with the `elmo` pipe in float32,
evaluated on their test sets with the pipe in float32, bfloat16 and int8 (nothing retrained).

    python bench/precision_fidelity.py \
        --run ner_10 training/demo/ner_elmo_10/model-best corpus/demo/conll2003/test.spacy \
        --run textcat training/demo/textcat_elmo_100/model-best corpus/demo/bbc/test.spacy \
        [--precisions float32,bfloat16,int8] [--output metrics/demo/precision_fidelity.md]

Each pipeline is loaded once per precision with spaCy's own config override
(`spacy.load(path, config={"components": {"elmo": {"precision": ...}}})`), exactly as a user switches it,
and scored with `nlp.evaluate` on the same docs. Prints a markdown table: the task's main score per
precision, its difference from float32, and the words/s of the evaluation pass.
"""
import argparse
import sys
import time
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import spacy
from spacy.training import Corpus, Example

# The score a task is judged by, first match wins: ner's entity F1, then textcat's accuracy (micro F of an
# exclusive textcat), then spaCy's textcat score.
MAIN_SCORES = ("ents_f", "cats_micro_f", "cats_score")


def main_score(scores: Dict[str, float]) -> Tuple[str, float]:
    for key in MAIN_SCORES:
        if scores.get(key) is not None:
            return key, float(scores[key])
    raise SystemExit(f"precision_fidelity: no score among {MAIN_SCORES} in {sorted(scores)}; "
                     "the pipeline needs an ner or textcat component.")


def load_examples(nlp, test_path: Path) -> List[Example]:
    """The test docs as `spacy evaluate` reads them (spaCy's Corpus reader), so float32 is its score."""
    return list(Corpus(test_path)(nlp))


def evaluate(pipeline: Path, test_path: Path, precision: str) -> Dict[str, float]:
    nlp = spacy.load(pipeline, config={"components": {"elmo": {"precision": precision}}})
    in_effect = nlp.get_pipe("elmo").bilm.precision  # what ran: an unsupported one falls back with a warning
    examples = load_examples(nlp, test_path)
    n_words = sum(len(eg.reference) for eg in examples)
    start = time.perf_counter()
    scores = nlp.evaluate(examples)
    seconds = time.perf_counter() - start
    key, value = main_score(scores)
    return {"metric": key, "score": value, "words_per_s": n_words / seconds, "precision": in_effect, "words": n_words}


def table(results: Dict[str, Dict[str, Dict[str, float]]], precisions: Sequence[str]) -> str:
    header = "| pipeline | metric | " + " | ".join(precisions) + " |"
    lines = [header, "|---|---|" + "---:|" * len(precisions)]
    for name, by_precision in results.items():
        base = by_precision[precisions[0]]["score"]
        cells = []
        for p in precisions:
            r = by_precision[p]
            delta = "" if p == precisions[0] else f" ({100 * (r['score'] - base):+.2f})"
            ran_as = "" if r["precision"] == p else f" [ran {r['precision']}]"
            cells.append(f"{100 * r['score']:.2f}{delta}{ran_as}, {r['words_per_s']:,.0f} w/s")
        lines.append(f"| {name} | {by_precision[precisions[0]]['metric']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", nargs=3, action="append", required=True, metavar=("NAME", "PIPELINE", "TEST_SPACY"),
                        help="a trained pipeline with an elmo pipe and its test set (.spacy); repeatable")
    parser.add_argument("--precisions", default="float32,bfloat16,int8",
                        help="comma-separated; the first is the reference the others are compared with")
    parser.add_argument("--output", type=Path, default=None, help="also write the table to this markdown file")
    return parser.parse_args(argv)


def run(argv: Sequence[str]) -> str:
    args = parse_args(argv)
    precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    for name, pipeline, test_path in args.run:
        for path in (Path(pipeline), Path(test_path)):
            if not path.exists():
                raise SystemExit(f"precision_fidelity: {path} does not exist (run {name!r}); train the pipeline "
                                 "first, e.g. `spacy project run demo`.")
    results: Dict[str, Dict[str, Dict[str, float]]] = {}
    for name, pipeline, test_path in args.run:
        results[name] = {p: evaluate(Path(pipeline), Path(test_path), p) for p in precisions}
        print(f"{name}: " + ", ".join(f"{p} {100 * r['score']:.2f}" for p, r in results[name].items()), flush=True)
    text = table(results, precisions)
    print(text)
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.output.with_name(args.output.name + ".tmp")
        tmp.write_text(text + "\n", encoding="utf8")
        tmp.replace(args.output)
    return text


if __name__ == "__main__":
    run(sys.argv[1:])
