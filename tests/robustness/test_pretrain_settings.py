"""`python -m spacy_elmo pretrain` with wrong settings, damaged files and odd directories: a message
naming the problem and exit code 1, and nothing written that the user did not ask for."""
import dataclasses
import shutil

import pytest
from confection import Config

from spacy_elmo.pretrain.config import DEFAULT_CONFIG, ConfigError, Settings, flat, load_config
from tests.pretrain.helpers import QUICK, TINY_CONFIG, make_corpus, output_of, pretrain_args, run_cli


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp("synthetic"), n_train=200, n_dev=20)


@pytest.fixture(scope="module")
def finished(corpus, tmp_path_factory):
    """A finished two-step run: checkpoint.pt, config.cfg, vocab.txt and the export."""
    out = tmp_path_factory.mktemp("finished") / "elmo"
    assert run_cli(*pretrain_args(corpus, out, *QUICK)) == 0
    return out


def _fails(capsys, *args) -> str:
    code = run_cli(*args)
    text = output_of(capsys)
    assert code == 1, text
    return " ".join(text.split())  # msg.fail wraps long lines


@pytest.mark.parametrize(
    "override, message",
    [
        (("--model.lstm_dim", "abc"), "model.lstm_dim must be an integer, not 'abc'"),
        (("--softmax.type", "foo"), "softmax.type is 'foo'; use one of full, sampled, adaptive"),
        (("--corpus.format", "xml"), "corpus.format is 'xml'"),
        (("--training.max_steps", "-5"), "training.max_steps is -5; it must be at least 0"),
        (("--training.batch_tokens", "0"), "training.batch_tokens is 0; it must be at least 1"),
        (("--model.n_highway", "-1"), "char_cnn.n_highway is -1"),
        (("--training.max_steps", "0", "--training.max_epochs", "0"), "set at least one of training.max_steps"),
        (("--training.max_tokens", "-1"), "training.max_tokens is -1; it must be at least 0"),
        (("--training.export", "first"), "training.export is 'first'; use one of best, last"),
    ],
)
def test_bad_settings_are_refused_before_anything_is_written(corpus, tmp_path, capsys, override, message):
    out = tmp_path / "elmo"
    text = _fails(capsys, *pretrain_args(corpus, out, *QUICK, *override))
    assert message in text
    assert not out.exists()


def test_a_misspelled_key_in_the_config_file_names_the_right_one(corpus, tmp_path, capsys):
    config = tmp_path / "mine.cfg"
    config.write_text(TINY_CONFIG.read_text(encoding="utf8").replace("[training]\n", "[training]\nmax_stepz = 5\n"), encoding="utf8")
    args = pretrain_args(corpus, tmp_path / "elmo", *QUICK)
    args[1] = str(config)
    text = _fails(capsys, *args)
    assert "unknown setting 'training.max_stepz' (did you mean 'training.max_steps'?)" in text
    assert str(config) in text
    assert not (tmp_path / "elmo").exists()


def test_an_empty_corpus_directory_is_a_message(corpus, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    text = _fails(capsys, *pretrain_args(corpus, tmp_path / "elmo", *QUICK, "--paths.train", tmp_path / "empty"))
    assert "contains no files" in text
    assert not (tmp_path / "elmo").exists()


def test_output_inside_the_corpus_directory_is_refused(corpus, tmp_path, capsys):
    corpus_dir = tmp_path / "corpus"
    corpus_dir.mkdir()
    shutil.copy(corpus["train"], corpus_dir / "train.txt")
    text = _fails(capsys, *pretrain_args(corpus, corpus_dir / "elmo", *QUICK, "--paths.train", corpus_dir))
    assert "inside the corpus directory paths.train" in text
    assert sorted(p.name for p in corpus_dir.iterdir()) == ["train.txt"]


@pytest.mark.parametrize("damage", [b"", b"garbage", "truncated"])
def test_resume_from_a_damaged_checkpoint_is_a_message(finished, corpus, tmp_path, capsys, damage):
    out = tmp_path / "elmo"
    shutil.copytree(finished, out)
    checkpoint = out / "checkpoint.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:2000] if damage == "truncated" else damage)
    text = _fails(capsys, *pretrain_args(corpus, out, *QUICK, "--training.max_steps", "4", "--resume"))
    assert "cannot be read" in text and "Traceback" not in text


def test_a_refused_resume_leaves_config_cfg_as_it_was(finished, corpus, tmp_path, capsys):
    out = tmp_path / "elmo"
    shutil.copytree(finished, out)
    before = (out / "config.cfg").read_text(encoding="utf8")
    text = _fails(capsys, *pretrain_args(corpus, out, *QUICK, "--model.lstm_dim", "32", "--resume"))
    assert "differs from the checkpoint's in: model.lstm_dim" in text
    assert (out / "config.cfg").read_text(encoding="utf8") == before


@pytest.mark.parametrize("edit", ["dropped_line", "swapped_lines"])
def test_resume_with_an_edited_vocab_is_refused(finished, corpus, tmp_path, capsys, edit):
    out = tmp_path / "elmo"
    shutil.copytree(finished, out)
    tokens = (out / "vocab.txt").read_text(encoding="utf8").splitlines()
    tokens = tokens[:-1] if edit == "dropped_line" else tokens[:3] + [tokens[4], tokens[3]] + tokens[5:]
    (out / "vocab.txt").write_text("\n".join(tokens) + "\n", encoding="utf8")
    text = _fails(capsys, *pretrain_args(corpus, out, *QUICK, "--training.max_steps", "4", "--resume"))
    assert "is not the vocabulary the checkpoint was trained with" in text


def test_settings_are_typed_dataclasses_with_exactly_the_config_keys():
    """The training loop reads Settings, never the raw config: its fields must be the config's keys."""
    settings = Settings.from_config(load_config(TINY_CONFIG, {"training.max_seconds": 90, "training.precision": "BF16",
                                                              "training.learning_rate": 1}))
    fields = {f"{section.name}.{f.name}" for section in dataclasses.fields(Settings)
              for f in dataclasses.fields(getattr(settings, section.name))}
    assert fields == set(flat(Config().from_str(DEFAULT_CONFIG)))
    t = settings.training
    assert t.max_seconds == 90.0 and isinstance(t.max_seconds, float)  # an int where a number is allowed
    assert t.learning_rate == 1.0 and isinstance(t.learning_rate, float)
    assert t.precision == "bf16" and t.max_steps == 300 and t.max_tokens == 0 and t.export == "best"
    assert settings.model.filters == ((1, 16), (2, 16), (3, 32)) and settings.softmax.cutoffs == ()
    assert settings.model.bilm_options().lstm_dim == 64
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.max_steps = 5  # type: ignore[misc]


def test_settings_from_an_unchecked_config_name_the_nearest_key():
    config = load_config(TINY_CONFIG)
    config["training"]["max_tokenz"] = 10
    with pytest.raises(ConfigError, match="unknown setting 'training.max_tokenz' \\(did you mean 'training.max_tokens'\\?\\)"):
        Settings.from_config(config)
