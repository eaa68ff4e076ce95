"""BBC News (5 exclusive topics) -> spaCy DocBin files train/dev/test.spacy for `textcat`.

Input: IN_DIR/{business,entertainment,politics,sports,tech}/NNN.txt, first line the title,
paragraphs separated by blank lines. Each paragraph (the title too) is tokenised with
spacy.blank("en") and split into sentences by the sentencizer; the paragraphs are then joined
with single spaces, so no whitespace tokens reach ELMo and a paragraph break is always a
sentence break. Documents are cut to the first --max-tokens tokens (the Doc is built from the
kept tokens, so doc.text matches them). The split is stratified per label with a fixed seed.

    python scripts/prepare_textcat.py assets/bbc corpus/bbc --max-tokens 400
"""
import random
import re
from collections import Counter
from pathlib import Path
from typing import Annotated, Dict, List, Optional, Tuple

import spacy
import typer
from spacy.language import Language
from spacy.tokens import Doc, DocBin

SPLIT_FRACTIONS = {"train": 0.7, "dev": 0.1, "test": 0.2}
Article = Tuple[str, str]  # (text, label)
ENCODINGS = ["utf-8", "cp1252", "latin-1"]  # latin-1 decodes any byte string, so it is the last resort


def decode(data: bytes, counts: Counter) -> str:
    for encoding in ENCODINGS:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        counts[encoding] += 1
        return text.lstrip("\ufeff")
    raise AssertionError("latin-1 cannot fail")


def read_articles(in_dir: Path) -> Tuple[List[str], List[Article]]:
    """Labels (the folder names) and the decoded articles, files in sorted order.

    The BBC set holds ~100 verbatim repeats (same text, same label); only the first is kept so a
    repeat cannot sit in train and test at once.
    """
    labels = sorted(p.name for p in in_dir.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))
    if not labels:
        raise typer.BadParameter(f"no category folders in {in_dir}")
    encodings: Counter = Counter()
    articles: List[Article] = []
    seen = set()
    for label in labels:
        for path in sorted((in_dir / label).glob("*.txt")):
            text = decode(path.read_bytes(), encodings)
            key = " ".join(text.split())
            if key not in seen:
                seen.add(key)
                articles.append((text, label))
    n_files = sum(encodings.values())
    print(f"{n_files} files, decoded as {dict(encodings)}; {n_files - len(articles)} duplicates dropped")
    return labels, articles


def stratified_split(items: List[Article], seed: int, limit: Optional[int]) -> Dict[str, List[Article]]:
    rng = random.Random(seed)
    by_label: Dict[str, List[Article]] = {}
    for item in items:
        by_label.setdefault(item[1], []).append(item)
    splits: Dict[str, List[List[Article]]] = {name: [] for name in SPLIT_FRACTIONS}
    for label in sorted(by_label):
        group = by_label[label]
        rng.shuffle(group)
        n_train = round(SPLIT_FRACTIONS["train"] * len(group))
        n_dev = round(SPLIT_FRACTIONS["dev"] * len(group))
        splits["train"].append(group[:n_train])
        splits["dev"].append(group[n_train : n_train + n_dev])
        splits["test"].append(group[n_train + n_dev :])
    result = {}
    for name, groups in splits.items():
        # Interleave the labels: any prefix (the --limit cap) is then as balanced as it can be.
        mixed = [group[i] for i in range(max(map(len, groups))) for group in groups if i < len(group)]
        result[name] = mixed[:limit] if limit is not None else mixed
    return result


def paragraphs(text: str) -> List[str]:
    # Whitespace inside a paragraph collapses to single spaces: no "\n" tokens.
    return [" ".join(part.split()) for part in re.split(r"\n\s*\n", text) if part.strip()]


def make_doc(nlp: Language, paragraph_docs: List[Doc], max_tokens: int) -> Doc:
    kept: List[Doc] = []
    n_tokens = 0
    for doc in paragraph_docs:
        if n_tokens + len(doc) > max_tokens:
            doc = doc[: max_tokens - n_tokens].as_doc()  # keeps the sentence starts
        if len(doc):
            kept.append(doc)
            n_tokens += len(doc)
        if n_tokens >= max_tokens:
            break
    return Doc.from_docs(kept, ensure_whitespace=True) if kept else nlp.make_doc("")


def main(
    in_dir: Annotated[Path, typer.Argument(help="Folder with one sub-folder of .txt files per label")],
    out_dir: Annotated[Path, typer.Argument(help="Folder for train/dev/test.spacy")],
    limit: Annotated[Optional[int], typer.Option(help="At most N documents per split (label-balanced)")] = None,
    max_tokens: Annotated[int, typer.Option(help="Keep the first N tokens of each document")] = 400,
    seed: Annotated[int, typer.Option(help="Seed of the stratified split")] = 0,
) -> None:
    labels, items = read_articles(in_dir)
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    out_dir.mkdir(parents=True, exist_ok=True)
    for split, split_items in stratified_split(items, seed, limit).items():
        texts = [paragraphs(text) for text, _ in split_items]
        # One nlp.pipe over all paragraphs of the split; each document takes its own back.
        paragraph_docs = nlp.pipe(p for ps in texts for p in ps)
        docs = []
        for (_, label), paras in zip(split_items, texts):
            doc = make_doc(nlp, [next(paragraph_docs) for _ in paras], max_tokens)
            doc.cats = {name: float(name == label) for name in labels}
            docs.append(doc)
        DocBin(docs=docs, store_user_data=False).to_disk(out_dir / f"{split}.spacy")
        per_label = Counter(label for _, label in split_items)
        n_tokens = sum(len(doc) for doc in docs)
        n_sents = sum(len(list(doc.sents)) for doc in docs)
        print(f"{split}.spacy: {len(docs)} docs {n_sents} sentences {n_tokens} tokens "
              f"{dict(sorted(per_label.items()))}")


if __name__ == "__main__":
    typer.run(main)
