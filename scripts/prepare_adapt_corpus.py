"""CoNLL-2003's training sentences -> a biLM adaptation corpus in prepare_lm_corpus.py's layout:
OUT_DIR/train.txt and OUT_DIR/dev.txt, one sentence per line, tokens separated by single spaces.

Only the words of train.txt are read (never valid.txt or test.txt: the ner scores stay on unseen text),
and never its tags. --train-fraction takes the same seeded subset of the training sentences as
prepare_conll.py's train_NN.spacy (same --seed and --limit-train), so the adaptation text can be exactly
what a ner run at that fraction trains on. --dev-fraction of those sentences are held out (seeded) for the
adaptation's dev perplexity; held-out sentences that also occur among the kept ones (CoNLL repeats
headlines, datelines and score lines) are dropped, so dev text is unseen.

    python scripts/prepare_adapt_corpus.py assets/conll2003 corpus/demo/adapt --dev-fraction 0.05
"""
import importlib.util
import random
from pathlib import Path
from typing import Annotated, List, Optional

import typer

HERE = Path(__file__).resolve().parent


def _prepare_conll():
    """scripts/prepare_conll.py, whose reader and subset this script must share."""
    spec = importlib.util.spec_from_file_location("prepare_conll", HERE / "prepare_conll.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def training_sentences(in_dir: Path, fraction: float = 1.0, limit_train: Optional[int] = None, seed: int = 0) -> List[List[str]]:
    """The words of the training sentences prepare_conll.py writes to train.spacy (fraction 1) or to
    train_NN.spacy (fraction NN / 100), in corpus order."""
    conll = _prepare_conll()
    sentences = [words for words, _tags in conll.read_conll(in_dir / "train.txt")]
    if limit_train is not None:
        sentences = sentences[:limit_train]
    if fraction >= 1.0:
        return sentences
    return [sentences[i] for i in conll.nested_subset(len(sentences), fraction, seed)]  # prepare_conll.py's subsets


def main(
    in_dir: Annotated[Path, typer.Argument(help="Folder with CoNLL-2003's train.txt (only that file is read)")],
    out_dir: Annotated[Path, typer.Argument(help="Folder for train.txt and dev.txt")],
    train_fraction: Annotated[float, typer.Option(help="Share of the training sentences, the same subset as prepare_conll.py's train_NN.spacy")] = 1.0,
    limit_train: Annotated[Optional[int], typer.Option(help="As prepare_conll.py --limit-train: the first N training sentences")] = None,
    seed: Annotated[int, typer.Option(help="prepare_conll.py's --seed (the training subsets)")] = 0,
    dev_fraction: Annotated[float, typer.Option(help="Share of those sentences held out for the dev perplexity")] = 0.05,
    dev_seed: Annotated[int, typer.Option(help="Seed of the held-out sentences")] = 1,
) -> None:
    if not 0.0 < train_fraction <= 1.0:
        raise typer.BadParameter(f"--train-fraction must be in (0, 1], not {train_fraction}")
    if not 0.0 <= dev_fraction < 1.0:
        raise typer.BadParameter(f"--dev-fraction must be in [0, 1), not {dev_fraction}")
    sentences = training_sentences(in_dir, train_fraction, limit_train, seed)
    held = set(random.Random(dev_seed).sample(range(len(sentences)), round(dev_fraction * len(sentences))))
    train = [s for i, s in enumerate(sentences) if i not in held]
    seen = {tuple(s) for s in train}
    dev = [s for i, s in enumerate(sentences) if i in held and tuple(s) not in seen]
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, split in (("train.txt", train), ("dev.txt", dev)):
        text = "".join(" ".join(words) + "\n" for words in split)
        (out_dir / name).write_text(text, encoding="utf-8")
        print(f"{name}: {len(split)} sentences {sum(len(s) for s in split)} words")
    print(f"{len(held) - len(dev)} held-out sentence(s) dropped: they repeat training sentences")


if __name__ == "__main__":
    typer.run(main)
