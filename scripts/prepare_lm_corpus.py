"""News articles -> a biLM training corpus in bilm-tf's format: one sentence per line, tokens
separated by single spaces, OUT_DIR/train.txt and OUT_DIR/dev.txt.

Input: IN_DIR/NewsArticles.zip (or NewsArticles.csv) with title, subtitle and text columns.
Title and subtitle are sentences of their own (they lack final punctuation); the text is split
by spacy.blank("en") + sentencizer. The split is by article (dev = held-out articles, seeded),
and articles whose text repeats an earlier one are dropped so dev stays unseen.

    python scripts/prepare_lm_corpus.py assets/news corpus/lm --dev-fraction 0.02
"""
import csv
import hashlib
import io
import random
import sys
import time
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Dict, Iterator, List, Optional, Set, TextIO, Tuple

import spacy
import typer

CSV_NAME = "NewsArticles.csv"
TEXT_COLUMNS = ["title", "subtitle", "text"]


@contextmanager
def open_csv(in_dir: Path) -> Iterator[TextIO]:
    """The articles CSV, read straight out of the zip when that is what fetch_assets extracted."""
    archive = in_dir / "NewsArticles.zip"
    if archive.exists():
        with zipfile.ZipFile(archive) as zf, zf.open(CSV_NAME) as raw:
            yield io.TextIOWrapper(raw, encoding="utf-8", newline="")
    else:
        with (in_dir / CSV_NAME).open(encoding="utf-8", newline="") as file:
            yield file


def read_rows(in_dir: Path) -> Iterator[Tuple[int, Dict[str, str]]]:
    csv.field_size_limit(sys.maxsize)  # article texts exceed csv's default 128 kB field limit
    with open_csv(in_dir) as file:
        yield from enumerate(csv.DictReader(file))


def text_key(row: Dict[str, str]) -> bytes:
    return hashlib.sha1(" ".join(row["text"].split()).encode("utf-8")).digest()


def choose_dev(in_dir: Path, dev_fraction: float, seed: int) -> Tuple[Set[int], Set[int]]:
    """(kept row numbers, dev row numbers): first pass over the CSV, holding only digests."""
    seen: Set[bytes] = set()
    kept: List[int] = []
    for number, row in read_rows(in_dir):
        key = text_key(row)
        if row["text"].strip() and key not in seen:
            seen.add(key)
            kept.append(number)
    shuffled = kept[:]
    random.Random(seed).shuffle(shuffled)
    n_dev = max(1, round(dev_fraction * len(kept))) if dev_fraction > 0 else 0
    print(f"{len(kept)} articles kept ({number + 1 - len(kept)} empty or repeated), {n_dev} held out for dev")
    return set(kept), set(shuffled[:n_dev])


def pieces(in_dir: Path, kept: Set[int], dev: Set[int]) -> Iterator[Tuple[str, str]]:
    """(text, split) for every title, subtitle and text of the kept articles, in file order."""
    for number, row in read_rows(in_dir):
        if number in kept:
            split = "dev" if number in dev else "train"
            for column in TEXT_COLUMNS:
                text = " ".join(row[column].split())  # also turns "\n" etc. into plain spaces
                if text:
                    yield text, split


def main(
    in_dir: Annotated[Path, typer.Argument(help="Folder with NewsArticles.zip or NewsArticles.csv")],
    out_dir: Annotated[Path, typer.Argument(help="Folder for train.txt and dev.txt")],
    dev_fraction: Annotated[float, typer.Option(help="Share of articles held out for dev")] = 0.02,
    limit_words: Annotated[Optional[int], typer.Option(help="Stop after about N words in all")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the dev articles")] = 0,
) -> None:
    start = time.perf_counter()
    kept, dev = choose_dev(in_dir, dev_fraction, seed)
    budget = {"train": float("inf"), "dev": float("inf")}
    if limit_words is not None:
        # Each split gets its share, so a small --limit-words still yields a dev file.
        budget["dev"] = round(limit_words * dev_fraction) if dev else 0
        budget["train"] = limit_words - budget["dev"]
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    out_dir.mkdir(parents=True, exist_ok=True)
    words = {"train": 0, "dev": 0}
    sents = {"train": 0, "dev": 0}
    with (out_dir / "train.txt").open("w", encoding="utf-8") as train, \
            (out_dir / "dev.txt").open("w", encoding="utf-8") as held_out:
        files = {"train": train, "dev": held_out}
        for doc, split in nlp.pipe(pieces(in_dir, kept, dev), as_tuples=True, batch_size=256):
            if words[split] >= budget[split]:
                if all(words[s] >= budget[s] for s in words):
                    break
                continue
            for sent in doc.sents:
                # spaCy tokens are either all whitespace or none; split() drops the former.
                tokens = [piece for token in sent for piece in token.text.split()]
                if tokens:
                    files[split].write(" ".join(tokens) + "\n")
                    words[split] += len(tokens)
                    sents[split] += 1
    for split in words:
        print(f"{split}.txt: {sents[split]} sentences {words[split]} words")
    print(f"{time.perf_counter() - start:.1f}s")


if __name__ == "__main__":
    typer.run(main)
