"""`python -m spacy_elmo pretrain`: everything that can be checked is checked before the first write, and a
run that fails leaves nothing behind that would make the corrected command be refused."""
import os

import pytest

from tests.pretrain.helpers import QUICK, make_corpus, pretrain_args, run_cli


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp("synthetic"), n_train=200, n_dev=20)


def _fails(capsys, *args) -> str:
    code = run_cli(*args)
    captured = capsys.readouterr()
    text = " ".join((captured.out + captured.err).split())
    assert code == 1, text
    assert "Traceback" not in text
    return text


def _bad_spacy_file(tmp_path, corpus):
    path = tmp_path / "train.spacy"
    path.write_bytes(b"not a DocBin")
    return ("--paths.train", path)


def _empty_vocab(tmp_path, corpus):
    path = tmp_path / "vocab.txt"
    path.write_text("\n\n", encoding="utf8")
    return ("--paths.vocab", path)


CASES = {
    "dropout": (lambda tmp, c: ("--model.dropout", "1.5"), "model.dropout is 1.5; it must be at least 0 and below 1"),
    "cutoffs_order": (lambda tmp, c: ("--softmax.type", "adaptive", "--softmax.cutoffs", "[60, 20]"),
                      "softmax.cutoffs is [60, 20]; it must be increasing"),
    "cutoffs_beyond_vocab": (lambda tmp, c: ("--softmax.type", "adaptive", "--softmax.cutoffs", "[20, 100000]"),
                             "softmax.cutoffs [20, 100000]: 100000 not below the vocabulary's"),
    "unreadable_corpus": (_bad_spacy_file, "Cannot read the corpus file"),
    "unknown_spacy_model": (lambda tmp, c: ("--corpus.format", "text", "--corpus.spacy_model", "xx_no_such_pipeline"),
                            "corpus.spacy_model = 'xx_no_such_pipeline' is neither an installed spaCy pipeline"),
    "unknown_blank_language": (lambda tmp, c: ("--corpus.format", "text", "--corpus.spacy_model", "blank:zz"),
                               "spaCy has no language 'zz'"),
    "empty_vocab_file": (_empty_vocab, "is empty"),
    "diverged_before_a_checkpoint": (lambda tmp, c: ("--training.learning_rate", "1e36", "--training.max_steps", "5"),
                                     "Training diverged"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_failed_run_leaves_nothing_that_refuses_the_corrected_command(corpus, tmp_path, capsys, case):
    make_args, message = CASES[case]
    out = tmp_path / "elmo"
    text = _fails(capsys, *pretrain_args(corpus, out, *QUICK, *make_args(tmp_path, corpus)))
    assert message in text, text
    assert not out.exists(), sorted(p.name for p in out.iterdir())
    assert run_cli(*pretrain_args(corpus, out, *QUICK)) == 0  # the same command, corrected


def test_a_failed_run_into_an_existing_folder_leaves_it_as_it_was(corpus, tmp_path, capsys):
    out = tmp_path / "elmo"
    out.mkdir()
    (out / "notes.txt").write_text("mine\n", encoding="utf8")
    _fails(capsys, *pretrain_args(corpus, out, *QUICK, "--softmax.type", "adaptive", "--softmax.cutoffs", "[20, 100000]"))
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads any file")
def test_a_corpus_file_without_read_permission_is_a_message(corpus, tmp_path, capsys):
    train = tmp_path / "train.txt"
    train.write_bytes(corpus["train"].read_bytes())
    train.chmod(0)
    text = _fails(capsys, *pretrain_args(corpus, tmp_path / "elmo", *QUICK, "--paths.train", train))
    assert f"Cannot read the corpus file {train}" in text
    assert not (tmp_path / "elmo").exists()
