"""training.lr_schedule: the rate of each step, warm-up then decay over the step or token budget, followed
through the CLI and kept exact across --resume."""
import json
import math
from pathlib import Path
from typing import List

import numpy
import pytest

from spacy_elmo.pretrain.config import ConfigError, Settings, load_config
from spacy_elmo.pretrain.schedule import learning_rate
from tests.pretrain.helpers import TINY_CONFIG, log_rows, make_corpus, pretrain_args, read_hdf5, run_cli


def settings(**training):
    overrides = {f"training.{key}": value for key, value in training.items()}
    return Settings.from_config(load_config(TINY_CONFIG, overrides)).training


def test_warm_up_then_cosine_or_linear_decay_to_the_floor_at_the_end_of_the_budget():
    T = settings(lr_schedule="cosine", warmup_steps=10, learning_rate=0.01, max_steps=100, final_lr_fraction=0.1)
    assert learning_rate(T, 0, 0) == pytest.approx(0.001)  # step 1 of a 10-step warm-up
    assert learning_rate(T, 9, 0) == pytest.approx(0.01 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.09))))
    assert learning_rate(T, 50, 0) == pytest.approx(0.01 * (0.1 + 0.9 * 0.5))  # half way: half way to the floor
    assert learning_rate(T, 100, 0) == pytest.approx(0.001)  # the floor: final_lr_fraction of the peak
    linear = settings(lr_schedule="linear", learning_rate=0.01, max_steps=100)
    assert [learning_rate(linear, s, 0) for s in (0, 25, 100)] == pytest.approx([0.01, 0.0075, 0.0])
    constant = settings(learning_rate=0.01, max_steps=100)
    assert {learning_rate(constant, s, 10 ** 6) for s in (0, 50, 99)} == {0.01}


def test_the_decay_follows_whichever_budget_ends_first():
    T = settings(lr_schedule="linear", learning_rate=1.0, max_steps=100, max_tokens=1000)
    assert learning_rate(T, 10, 500) == pytest.approx(0.5)  # tokens are half spent, steps a tenth
    assert learning_rate(T, 80, 100) == pytest.approx(0.2)


@pytest.mark.parametrize("override, message", [
    ({"lr_schedule": "cosine", "max_steps": 0, "max_epochs": 3}, "set training.max_steps or training.max_tokens"),
    ({"lr_schedule": "cosine", "max_steps": 0, "max_seconds": 60}, "set training.max_steps or training.max_tokens"),
    ({"lr_schedule": "exponential"}, "use one of constant, linear, cosine"),
    ({"final_lr_fraction": 1.5}, "between 0 and 1"),
])
def test_a_schedule_that_cannot_work_is_refused_when_the_config_loads(override, message):
    with pytest.raises(ConfigError, match=message):
        settings(**override)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp("synthetic"), n_train=300, n_dev=30)


def _train_rows(directory: Path) -> List[dict]:
    rows = log_rows(directory)
    return [r for r in rows if r["event"] == "train"]


def test_the_cli_run_follows_the_schedule_and_resumes_onto_the_same_curve(corpus, tmp_path):
    """A cosine run over a token budget, once straight and once stopped after its first epoch (epochs are not
    part of the schedule) and resumed: the same rate at every logged step and bit-equal final weights."""
    common = ["--training.max_steps", 0, "--training.max_tokens", 12000, "--training.lr_schedule", "cosine",
              "--training.warmup_steps", 4, "--training.learning_rate", 0.01, "--training.eval_every", 0,
              "--training.checkpoint_every", 0, "--training.log_every", 1]
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert run_cli(*pretrain_args(corpus, straight, *common)) == 0
    assert run_cli(*pretrain_args(corpus, split, *common, "--training.max_epochs", 1)) == 0
    first_part = _train_rows(split)
    assert json.loads((split / "metrics.json").read_text())["stop_reason"] == "max_epochs=1"
    assert run_cli(*pretrain_args(corpus, split, *common, "--training.max_epochs", 0), "--resume") == 0

    rows = _train_rows(straight)
    assert len(first_part) < len(rows)  # the split run did stop part way
    rates = [r["learning_rate"] for r in rows]
    assert rates[0] == pytest.approx(0.0025)  # a quarter of the peak at the first of 4 warm-up steps
    assert rates[0] < rates[1] < rates[2] < rates[3] > 0.009  # up over the warm-up, then down to the end
    assert all(a >= b for a, b in zip(rates[3:], rates[4:])) and rates[-1] < 0.001
    assert [r["learning_rate"] for r in _train_rows(split)] == rates
    a, b = read_hdf5(straight / "weights.hdf5"), read_hdf5(split / "weights.hdf5")
    assert a.keys() == b.keys() and all(numpy.array_equal(a[k], b[k]) for k in a)
