"""scripts/prepare_adapt_corpus.py on the CoNLL sample of test_prepare.py: the words of the training
sentences only, the same subsets as prepare_conll.py, in prepare_lm_corpus.py's layout."""
from pathlib import Path

import pytest
import typer

from tests.scripts.test_prepare import conll_dir, load_script, read_docs  # noqa: F401 (a fixture)


def _lines(path: Path) -> list:
    return path.read_text(encoding="utf-8").splitlines()


def test_all_training_sentences_no_dev_or_test_text(conll_dir: Path, tmp_path: Path) -> None:
    (conll_dir / "test.txt").write_text("-DOCSTART- -X- -X- O\n\nJapan NNP B-NP B-LOC\nwins VBZ B-VP O\n", encoding="utf-8")
    (conll_dir / "valid.txt").write_text("Only NNP B-NP O\nvalid VBZ B-VP O\n", encoding="utf-8")
    out = tmp_path / "adapt"
    load_script("prepare_adapt_corpus").main(conll_dir, out, dev_fraction=0.0)
    assert sorted(p.name for p in out.iterdir()) == ["dev.txt", "train.txt"]
    assert _lines(out / "train.txt") == ["EU rejects German call .", "Peter Blackburn", "BRUSSELS 1996-08-22",
                                         "The European Commission said ."]
    assert _lines(out / "dev.txt") == []
    text = (out / "train.txt").read_text(encoding="utf-8")
    assert "Japan" not in text and "valid" not in text and "DOCSTART" not in text and "B-ORG" not in text


def test_the_fraction_is_the_subset_prepare_conll_writes(conll_dir: Path, tmp_path: Path) -> None:
    load_script("prepare_conll").main(conll_dir, tmp_path / "conll", train_fractions="0.5,1.0", seed=0)
    load_script("prepare_adapt_corpus").main(conll_dir, tmp_path / "adapt", train_fraction=0.5, dev_fraction=0.0)
    assert _lines(tmp_path / "adapt" / "train.txt") == [doc.text for doc in read_docs(tmp_path / "conll" / "train_50.spacy")]


def test_held_out_sentences_are_unseen(conll_dir: Path, tmp_path: Path) -> None:
    # The same sentence twice: if one copy is held out, it is dropped from dev (the other is trained on).
    (conll_dir / "train.txt").write_text("".join(f"w{i} X X O\nsame X X O\n\n" for i in range(20)) + "same X X O\n\n" * 10,
                                         encoding="utf-8")
    out = tmp_path / "adapt"
    load_script("prepare_adapt_corpus").main(conll_dir, out, dev_fraction=0.5, dev_seed=1)
    train, dev = _lines(out / "train.txt"), _lines(out / "dev.txt")
    assert 10 <= len(train) <= 20 and 0 < len(dev) <= 15 and "same" in train
    assert not set(dev) & set(train)
    assert len(train) + len(dev) <= 30


def test_bad_fractions_are_refused(conll_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(typer.BadParameter):
        load_script("prepare_adapt_corpus").main(conll_dir, tmp_path / "a", train_fraction=0.0)
    with pytest.raises(typer.BadParameter):
        load_script("prepare_adapt_corpus").main(conll_dir, tmp_path / "a", dev_fraction=1.0)
    assert not (tmp_path / "a").exists()
