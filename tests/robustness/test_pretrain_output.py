"""`python -m spacy_elmo pretrain --output DIR` never replaces a biLM it did not train there."""
import pytest

from spacy_elmo import save_bilm
from tests.conftest import random_bilm
from tests.pretrain.helpers import QUICK, make_corpus, output_of, pretrain_args, run_cli


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp("synthetic"), n_train=200, n_dev=20)


def _published_weights(directory):
    """What a user places in training/elmo: published options.json + weights.hdf5 (+ vocab.txt)."""
    save_bilm(random_bilm(), directory)
    (directory / "vocab.txt").write_text("<S>\n</S>\n<UNK>\nthe\n", encoding="utf8")
    return {name: (directory / name).read_bytes() for name in ("options.json", "weights.hdf5", "vocab.txt")}


@pytest.mark.parametrize("resume", [False, True])
def test_pretrain_refuses_to_replace_weights_without_a_checkpoint(corpus, tmp_path, capsys, resume):
    out = tmp_path / "elmo"
    before = _published_weights(out)
    code = run_cli(*pretrain_args(corpus, out, *QUICK, *(["--resume"] if resume else [])))
    assert code == 1
    assert "--overwrite" in output_of(capsys)
    assert {name: (out / name).read_bytes() for name in before} == before
    assert sorted(p.name for p in out.iterdir()) == sorted(before)  # nothing else written either


def test_pretrain_refuses_a_single_existing_vocab(corpus, tmp_path):
    out = tmp_path / "elmo"
    out.mkdir()
    (out / "vocab.txt").write_text("mine\n", encoding="utf8")
    assert run_cli(*pretrain_args(corpus, out, *QUICK)) == 1
    assert (out / "vocab.txt").read_text(encoding="utf8") == "mine\n"


def test_pretrain_overwrite_flag_replaces_them(corpus, tmp_path):
    out = tmp_path / "elmo"
    before = _published_weights(out)
    assert run_cli(*pretrain_args(corpus, out, *QUICK, "--overwrite")) == 0
    assert all((out / name).read_bytes() != content for name, content in before.items())
    assert (out / "checkpoint.pt").is_file()


@pytest.mark.parametrize("name", ["config.cfg", "metrics.json", "log.jsonl", "training_curve.png"])
def test_pretrain_refuses_to_replace_any_file_it_would_write(corpus, tmp_path, capsys, name):
    """Not only the biLM: a user's config, metrics, log or chart in --output is not replaced by a fresh run."""
    out = tmp_path / "elmo"
    out.mkdir()
    (out / name).write_text("mine\n", encoding="utf8")
    assert run_cli(*pretrain_args(corpus, out, *QUICK)) == 1
    captured = capsys.readouterr()
    text = " ".join((captured.out + captured.err).split())
    assert f"already holds {name}" in text and "--overwrite" in text and "another --output" in text
    assert (out / name).read_text(encoding="utf8") == "mine\n"
    assert [p.name for p in out.iterdir()] == [name]
    assert run_cli(*pretrain_args(corpus, out, *QUICK, "--overwrite")) == 0
    assert (out / name).read_bytes() != b"mine\n"
