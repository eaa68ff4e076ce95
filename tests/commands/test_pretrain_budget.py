"""`python -m spacy_elmo pretrain`: a token budget that stops every machine at the same step, and the export
of the best dev evaluation's weights (issue 10 item 1), both kept exact across --resume."""
import json
import shutil
import subprocess
from pathlib import Path
from typing import List

import numpy
import pytest
import torch

from spacy_elmo import load_bilm
from spacy_elmo.pretrain.checkpoint import load_checkpoint
from spacy_elmo.pretrain.numerics import deterministic_algorithms
from tests.pretrain.helpers import cli_command, log_rows, make_corpus, pretrain_args, output_of, read_hdf5, run_cli


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp("synthetic"), n_train=400, n_dev=40)


def _metrics(directory: Path) -> dict:
    return json.loads((directory / "metrics.json").read_text(encoding="utf8"))


def _rows(directory: Path, event: str) -> List[dict]:
    rows = log_rows(directory)
    return [r for r in rows if r["event"] == event]


def _same_weights(a: Path, b: Path) -> bool:
    x, y = read_hdf5(a / "weights.hdf5"), read_hdf5(b / "weights.hdf5")
    return x.keys() == y.keys() and all(numpy.array_equal(x[k], y[k]) for k in x)


def test_max_tokens_stops_at_the_step_that_reaches_it_and_resumes_exactly(corpus, tmp_path):
    only_tokens = ["--training.max_steps", 0, "--training.max_epochs", 0, "--training.eval_every", 0,
                   "--training.checkpoint_every", 0, "--training.log_every", 1]
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert run_cli(*pretrain_args(corpus, split, *only_tokens, "--training.max_tokens", 3000)) == 0
    metrics = _metrics(split)
    assert metrics["stop_reason"] == "max_tokens=3000"
    tokens = [r["tokens"] for r in _rows(split, "train")]
    assert tokens[-1] == metrics["train_tokens"] >= 3000 > tokens[-2]  # no step more than needed
    # A larger budget on --resume continues to the same weights as a run given that budget at once.
    assert run_cli(*pretrain_args(corpus, split, *only_tokens, "--training.max_tokens", 9000), "--resume") == 0
    assert run_cli(*pretrain_args(corpus, straight, *only_tokens, "--training.max_tokens", 9000)) == 0
    assert _metrics(split)["stop_reason"] == _metrics(straight)["stop_reason"] == "max_tokens=9000"
    assert _metrics(split)["step"] == _metrics(straight)["step"] and _metrics(split)["epoch"] >= 2
    assert _same_weights(split, straight)


def test_export_best_keeps_the_best_dev_weights_through_resume(corpus, tmp_path):
    common = ["--training.eval_every", 4, "--training.checkpoint_every", 4, "--training.log_every", 4]
    first = tmp_path / "first"
    assert run_cli(*pretrain_args(corpus, first, "--training.max_steps", 12, *common)) == 0
    assert _metrics(first)["exported"] == {"weights": "best", "step": 12, "dev": _metrics(first)["history"][-1]}
    straight, split = tmp_path / "straight", tmp_path / "split"
    shutil.copytree(first, straight)
    shutil.copytree(first, split)
    # Then a learning rate far too high: every later evaluation is worse than step 12's.
    worse = ["--training.learning_rate", 0.2]
    assert run_cli(*pretrain_args(corpus, straight, "--training.max_steps", 20, *common, *worse), "--resume") == 0
    # The same run stopped at step 18: its checkpoint must carry step 12's weights besides its own.
    assert run_cli(*pretrain_args(corpus, split, "--training.max_steps", 18, *common, *worse), "--resume") == 0
    assert load_checkpoint(split)["best"]["step"] == 12
    assert run_cli(*pretrain_args(corpus, split, "--training.max_steps", 20, *common, *worse), "--resume") == 0

    for out in (straight, split):
        metrics = _metrics(out)
        history = {h["step"]: h["perplexity"] for h in metrics["history"]}
        assert metrics["step"] == 20 and max(history) == 20 and history[20] > history[12] == min(history.values())
        assert metrics["best_dev"]["step"] == metrics["exported"]["step"] == metrics["dev"]["step"] == 12
        assert metrics["exported"]["weights"] == "best"
        assert [(r["weights"], r["step"]) for r in _rows(out, "export")][-1] == ("best", 12)
        assert json.loads((out / "options.json").read_text(encoding="utf8"))["exported_step"] == 12
        assert _same_weights(out, first), out.name  # exactly step 12's weights, not step 20's
    # training.export = "last" (it may change on --resume; resuming a finished run only re-exports)
    assert run_cli(*pretrain_args(corpus, split, "--training.max_steps", 20, *common, *worse,
                                  "--training.export", "last"), "--resume") == 0
    metrics = _metrics(split)
    assert metrics["step"] == 20 and metrics["exported"]["weights"] == "last" and metrics["exported"]["step"] == 20
    assert metrics["dev"]["step"] == 20 and metrics["dev"]["perplexity"] > metrics["best_dev"]["perplexity"]
    final = load_checkpoint(split)["model"]
    exported = load_bilm(split / "options.json", split / "weights.hdf5")
    for name, tensor in exported.state_dict().items():
        assert torch.equal(tensor, final["bilm." + name]), name


def test_a_dev_set_changed_on_resume_restarts_the_best(corpus, tmp_path, capsys):
    """Perplexities on different dev text do not compare: after --resume with more dev sentences, the best (and so
    the export) comes only from evaluations on the new dev set, even where an old one's number is lower."""
    common = ["--training.eval_every", 4, "--training.checkpoint_every", 4, "--training.log_every", 4]
    out = tmp_path / "run"
    assert run_cli(*pretrain_args(corpus, out, "--training.max_steps", 12, "--corpus.dev_max_sentences", 10, *common)) == 0
    assert _metrics(out)["best_dev"]["step"] == 12 and _metrics(out)["unigram_perplexity"] > 0
    capsys.readouterr()
    # a learning rate far too high: on the old dev set step 12 would stay the best
    assert run_cli(*pretrain_args(corpus, out, "--training.max_steps", 16, "--corpus.dev_max_sentences", 40, *common,
                                  "--training.learning_rate", 0.2), "--resume") == 0
    assert "The dev set differs from the one of the best evaluation so far (step 12, 10 sentences, now 40)" in output_of(capsys)
    metrics = _metrics(out)
    history = metrics["history"]
    assert [h["dev_sentences"] for h in history] == [10, 10, 10, 10, 40]
    assert history[3]["perplexity"] < history[4]["perplexity"]  # the old number would have won
    assert metrics["best_dev"] == metrics["dev"] == history[4] and metrics["exported"]["step"] == 16
    assert history[4]["dev_digest"] != history[3]["dev_digest"] == history[0]["dev_digest"]
    assert "unigram_perplexity" not in metrics  # it was the first dev set's


def test_export_best_without_a_dev_set_exports_the_last_step(corpus, tmp_path):
    out = tmp_path / "nodev"
    assert run_cli(*pretrain_args(corpus, out, "--training.max_steps", 3, "--paths.dev", "null",
                                  "--training.checkpoint_every", 0)) == 0
    metrics = _metrics(out)
    assert metrics["exported"] == {"weights": "last", "step": 3, "dev": None} and metrics["best_dev"] is None


def test_the_demo_biLM_is_bounded_by_tokens_not_wall_time():
    """configs/pretrain_small.cfg (the demo's biLM): the same model on a slow or busy machine (issue 10)."""
    from spacy_elmo.pretrain.config import Settings, load_config
    from tests.pretrain.helpers import ROOT

    training = Settings.from_config(load_config(ROOT / "configs" / "pretrain_small.cfg")).training
    assert training.max_seconds == 0 and training.max_tokens > 0 and training.export == "best"


def test_two_threads_on_cpu_train_the_same_biLM_bit_for_bit(corpus, tmp_path):
    """training.deterministic (the default): a rerun of the same command on the same machine with two threads exports
    the same weights. Without it two threads in fp32 drift apart within steps (the demo's biLM came out at perplexity
    179.8 and 180.3 from the same command). In subprocesses: two torch threads would stay set in this one."""
    two_threads = ["--training.threads", 2, "--training.max_steps", 25, "--training.eval_every", 0,
                   "--training.checkpoint_every", 0, "--model.lstm_dim", 256, "--training.batch_tokens", 2000]
    runs = [tmp_path / "first", tmp_path / "second"]
    for output in runs:
        done = subprocess.run(cli_command(*pretrain_args(corpus, output, *two_threads)), capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
    assert _same_weights(*runs)


def test_the_deterministic_setting_holds_for_the_run_only():
    """torch's process-wide settings are back as they were after the run (an API user's own code keeps its own)."""
    import torch.utils.deterministic as determinism

    before = (torch.are_deterministic_algorithms_enabled(), determinism.fill_uninitialized_memory)
    with deterministic_algorithms(True):
        assert torch.are_deterministic_algorithms_enabled() and not determinism.fill_uninitialized_memory
    assert (torch.are_deterministic_algorithms_enabled(), determinism.fill_uninitialized_memory) == before
    with deterministic_algorithms(False):
        assert torch.are_deterministic_algorithms_enabled() == before[0]
