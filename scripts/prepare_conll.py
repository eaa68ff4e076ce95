"""CoNLL-2003 (English, 4 columns, IOB2 NER tags) -> spaCy DocBin files, one Doc per sentence.

ELMo is a sentence-level model, so each sentence is its own Doc, marked as one sentence.
Outputs in OUT_DIR: train.spacy, dev.spacy (from valid.txt), test.spacy, and train_NN.spacy
for every --train-fractions value below 1: a random subset of the training sentences, drawn
from one seeded permutation so the smaller subsets are contained in the larger ones.

    python scripts/prepare_conll.py assets/conll2003 corpus/conll2003 --train-fractions 0.1,0.25,1.0
"""
import random
from pathlib import Path
from typing import Annotated, Callable, Iterator, List, Optional, Tuple

import spacy
import typer
from spacy.tokens import Doc, DocBin
from spacy.vocab import Vocab

Sentence = Tuple[List[str], List[str]]  # (words, IOB2 NER tags)

SPLITS = [("train", "train.txt"), ("dev", "valid.txt"), ("test", "test.txt")]


def read_conll(path: Path) -> Iterator[Sentence]:
    """Sentences of a CoNLL-2003 file: blank lines separate them, -DOCSTART- lines are dropped."""
    words: List[str] = []
    tags: List[str] = []
    with path.open(encoding="utf-8") as file:
        for line in file:
            fields = line.split()
            if fields and fields[0] != "-DOCSTART-":
                words.append(fields[0])
                tags.append(fields[-1])  # NER is the last column (word POS chunk NER)
            elif words:
                yield words, tags
                words, tags = [], []
    if words:
        yield words, tags


def sentence_to_doc(vocab: Vocab, words: List[str], tags: List[str]) -> Doc:
    # No space after the last word, so doc.text has no trailing whitespace.
    spaces = [True] * (len(words) - 1) + [False]
    doc = Doc(vocab, words=words, spaces=spaces, ents=tags)  # Doc validates the IOB sequence
    for token in doc:
        token.is_sent_start = token.i == 0
    return doc


def write_docbin(path: Path, docs: List[Doc]) -> None:
    # store_user_data off: nothing custom is set, and it keeps the files small.
    DocBin(docs=docs, store_user_data=False).to_disk(path)
    n_tokens = sum(len(doc) for doc in docs)
    n_ents = sum(len(doc.ents) for doc in docs)
    print(f"{path.name:<18} {len(docs):>7} sentences {n_tokens:>8} tokens {n_ents:>7} entities")


def parse_fractions(text: str) -> List[float]:
    fractions = sorted({float(part) for part in text.split(",") if part.strip()})
    if not fractions or not all(0.0 < f <= 1.0 for f in fractions):
        raise typer.BadParameter(f"fractions must be in (0, 1]: {text!r}")
    return fractions


def nested_subset(n: int, fraction: float, seed: int) -> List[int]:
    """Indices of a `fraction` of n items, in corpus order, from one seeded permutation: a prefix of it is a
    subset of every longer prefix, so the 10% training set lies inside the 25% one. prepare_sentiment.py and
    prepare_adapt_corpus.py take their subsets here too (the adaptation text is the ner subset's own)."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return sorted(order[: max(1, round(fraction * n))])


def write_training_subsets(out_dir: Path, docs: List[Doc], fractions: List[float], seed: int,
                           write: Callable[[Path, List[Doc]], None]) -> None:
    """train_NN.spacy for every fraction below 1 (NN = its percentage), each a nested_subset of docs."""
    for fraction in fractions:
        if fraction < 1.0:
            write(out_dir / f"train_{round(fraction * 100)}.spacy", [docs[i] for i in nested_subset(len(docs), fraction, seed)])


def main(
    in_dir: Annotated[Path, typer.Argument(help="Folder with train.txt, valid.txt, test.txt")],
    out_dir: Annotated[Path, typer.Argument(help="Folder for the .spacy files")],
    train_fractions: Annotated[str, typer.Option(help="Comma-separated; <1 gives train_NN.spacy")] = "0.1,0.25,1.0",
    limit_train: Annotated[Optional[int], typer.Option(help="Keep the first N training sentences")] = None,
    limit_dev: Annotated[Optional[int], typer.Option(help="Keep the first N dev sentences")] = None,
    limit_test: Annotated[Optional[int], typer.Option(help="Keep the first N test sentences")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the training subsets")] = 0,
) -> None:
    fractions = parse_fractions(train_fractions)
    limits = {"train": limit_train, "dev": limit_dev, "test": limit_test}
    out_dir.mkdir(parents=True, exist_ok=True)
    vocab = spacy.blank("en").vocab
    for split, filename in SPLITS:
        sentences = list(read_conll(in_dir / filename))
        if limits[split] is not None:
            sentences = sentences[: limits[split]]
        docs = [sentence_to_doc(vocab, words, tags) for words, tags in sentences]
        if split != "train":
            write_docbin(out_dir / f"{split}.spacy", docs)
            continue
        write_docbin(out_dir / "train.spacy", docs)
        write_training_subsets(out_dir, docs, fractions, seed, write_docbin)


if __name__ == "__main__":
    typer.run(main)
