"""`python -m spacy_elmo pretrain` end to end on a synthetic corpus with learnable structure."""
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy
import pytest
import torch

from spacy_elmo import load_bilm, save_bilm
from spacy_elmo.pretrain.checkpoint import load_checkpoint
from tests.pretrain.helpers import (QUICK, ROOT, TINY_CONFIG, cli_command, log_rows, make_corpus, output_of,
                                   pretrain_args, read_hdf5, run_cli)

STEPS = 120


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp("synthetic"))


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory):
    """The tiny config trained for STEPS steps through the CLI, in this process."""
    out = tmp_path_factory.mktemp("tiny") / "elmo"
    start = time.time()
    code = run_cli(*pretrain_args(corpus, out, "--training.max_steps", STEPS, "--training.eval_every", 60,
                                  "--training.checkpoint_every", 60, "--training.log_every", 10))
    assert code == 0
    print(f"tiny pretraining: {time.time() - start:.1f}s")
    return out


def _metrics(directory: Path) -> dict:
    return json.loads((directory / "metrics.json").read_text(encoding="utf8"))


def test_pretraining_learns_far_below_unigram_perplexity(trained):
    metrics = _metrics(trained)
    unigram = metrics["unigram_perplexity"]
    history = metrics["history"]
    assert [h["step"] for h in history] == [0, 60, 120]
    assert history[0]["perplexity"] > unigram  # an untrained model is worse than unigram statistics
    final = metrics["dev"]
    assert final["step"] == STEPS and metrics["step"] == STEPS
    assert final["perplexity"] < unigram / 3, (final, unigram)
    assert final["forward_perplexity"] < unigram / 3 and final["backward_perplexity"] < unigram / 3
    assert metrics["tokens_per_second"] > 0 and metrics["train_tokens"] > 0
    rows = log_rows(trained)
    train_rows = [r for r in rows if r["event"] == "train"]
    assert [r["step"] for r in train_rows] == list(range(10, STEPS + 1, 10))
    assert train_rows[-1]["loss"] < train_rows[0]["loss"]
    assert {"start", "corpus", "eval", "checkpoint", "end"} <= {r["event"] for r in rows}
    assert (trained / "training_curve.png").stat().st_size > 1000
    assert "max_steps = 120" in (trained / "config.cfg").read_text(encoding="utf8")


def test_export_round_trips_through_load_bilm_and_the_spacy_component(trained):
    options = json.loads((trained / "options.json").read_text(encoding="utf8"))
    vocab = (trained / "vocab.txt").read_text(encoding="utf8").splitlines()
    assert vocab[:3] == ["<S>", "</S>", "<UNK>"]
    assert options["n_tokens_vocab"] == len(vocab) and options["bidirectional"] is True
    assert options["lstm"]["dim"] == 64 and options["lstm"]["projection_dim"] == 32
    bilm = load_bilm(trained / "options.json", trained / "weights.hdf5")
    # The exported weights are exactly the checkpoint's biLM.
    saved = load_checkpoint(trained)["model"]
    for name, tensor in bilm.state_dict().items():
        assert torch.equal(tensor, saved["bilm." + name]), name
    arrays = read_hdf5(trained / "weights.hdf5")
    assert arrays["softmax/W"].shape == (len(vocab), 32) and arrays["softmax/b"].shape == (len(vocab),)
    assert numpy.array_equal(arrays["softmax/W"], saved["head.weight"].numpy())
    out = bilm.embed_sentences([["the", "cat", "sees", "a", "song", "."], ["two", "dogs"]])
    assert out[0].shape == (3, 6, 64) and out[1].shape == (3, 2, 64)
    resaved = save_bilm(bilm, trained.parent / "resaved")
    again = load_bilm(resaved / "options.json", resaved / "weights.hdf5")
    assert numpy.array_equal(again.embed_sentences([["the", "cat"]])[0], bilm.embed_sentences([["the", "cat"]])[0])
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe("elmo", config={"weights": str(trained)})
    doc = nlp("the happy cat reads a book .")
    assert doc._.elmo_layers.shape == (3, 7, 64)


def test_resume_reproduces_an_uninterrupted_run_exactly(corpus, tmp_path):
    common = ["--training.eval_every", 0, "--training.checkpoint_every", 0, "--training.log_every", 5,
              "--model.dropout", 0.1, "--softmax.type", "sampled", "--softmax.n_samples", 20,
              "--training.threads", 1]  # one thread: multi-threaded CPU reductions differ in the last bits
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert run_cli(*pretrain_args(corpus, straight, "--training.max_steps", 36, *common)) == 0
    assert run_cli(*pretrain_args(corpus, split, "--training.max_steps", 13, *common)) == 0
    assert load_checkpoint(split)["state"]["step"] == 13
    # Without --resume an existing run is never overwritten.
    assert run_cli(*pretrain_args(corpus, split, "--training.max_steps", 36, *common)) == 1
    assert run_cli(*pretrain_args(corpus, split, "--training.max_steps", 36, *common), "--resume") == 0
    a, b = read_hdf5(straight / "weights.hdf5"), read_hdf5(split / "weights.hdf5")
    assert a.keys() == b.keys()
    for key in a:
        assert numpy.array_equal(a[key], b[key]), key
    state_a, state_b = load_checkpoint(straight)["state"], load_checkpoint(split)["state"]
    assert state_a["step"] == state_b["step"] == 36 and state_a["epoch"] == state_b["epoch"] >= 1
    # Resuming a finished run does no further step.
    assert run_cli(*pretrain_args(corpus, split, "--training.max_steps", 36, *common), "--resume") == 0
    assert load_checkpoint(split)["state"]["step"] == 36
    assert numpy.array_equal(read_hdf5(split / "weights.hdf5")["char_embed"], a["char_embed"])
    # A changed model setting cannot be resumed into.
    assert run_cli(*pretrain_args(corpus, split, "--training.max_steps", 40, *common, "--model.lstm_dim", 32), "--resume") == 1


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 90.0) -> None:
    deadline = time.time() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline, "no checkpoint appeared"
        time.sleep(0.05)


def test_kill_9_loses_at_most_the_steps_since_the_last_checkpoint(corpus, tmp_path):
    out = tmp_path / "killed"
    args = pretrain_args(corpus, out, "--training.max_steps", 70, "--training.checkpoint_every", 5,
                         "--training.eval_every", 0, "--training.log_every", 5)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    rng = random.Random(0)
    steps_seen = []
    for attempt in range(2):  # kill a fresh run, then kill the resumed run
        cmd = cli_command(*args, *(["--resume"] if attempt else []))
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if attempt:
            start_step = steps_seen[-1]
            deadline = time.time() + 90
            while load_checkpoint(out)["state"]["step"] == start_step:
                assert proc.poll() is None and time.time() < deadline
                time.sleep(0.05)
        else:
            _wait_for(out / "checkpoint.pt", proc)
        time.sleep(rng.uniform(0.0, 0.6))  # at an arbitrary moment, possibly mid-write
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        state = load_checkpoint(out)  # never corrupt
        step = state["state"]["step"]
        assert step % 5 == 0 and step >= 5
        assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
        steps_seen.append(step)
    assert steps_seen[1] > steps_seen[0]
    assert run_cli(*args, "--resume") == 0
    metrics = _metrics(out)
    assert metrics["step"] == 70
    assert not list(out.glob(".*.tmp"))
    train_steps = [row["step"] for row in log_rows(out) if row["event"] == "train"]
    assert train_steps == sorted(set(train_steps)) and train_steps[-1] == 70  # redone steps are not logged twice
    load_bilm(out / "options.json", out / "weights.hdf5")


def test_non_finite_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(corpus, tmp_path, capsys):
    out = tmp_path / "diverge"
    base = ["--training.eval_every", 0, "--training.log_every", 5, "--training.checkpoint_every", 5]
    assert run_cli(*pretrain_args(corpus, out, "--training.max_steps", 10, *base)) == 0
    before = load_checkpoint(out)
    capsys.readouterr()
    code = run_cli(*pretrain_args(corpus, out, "--training.max_steps", 30, "--training.learning_rate", 1e38, *base), "--resume")
    assert code == 1
    printed = output_of(capsys)
    assert "diverged" in printed and "not finite" in printed and "last good checkpoint" in printed
    after = load_checkpoint(out)
    step = after["state"]["step"]
    assert 10 <= step < 30 and step % 5 == 0
    assert all(torch.isfinite(v).all() for v in after["model"].values() if v.is_floating_point())
    assert any(row["event"] == "error" for row in log_rows(out))
    # A lower learning rate continues the run from the good checkpoint.
    assert run_cli(*pretrain_args(corpus, out, "--training.max_steps", step + 5, *base), "--resume") == 0
    assert before["state"]["step"] == 10


def test_an_adam_update_that_overflows_stops_as_a_divergence_not_a_traceback(corpus, tmp_path, capsys):
    # Adam's step is the rate over its bias correction (1 - 0.9): 1e38 / 0.1 overflows float32 inside torch
    out = tmp_path / "adam"
    code = run_cli(*pretrain_args(corpus, out, *QUICK, "--training.optimizer", "adam",
                                  "--training.learning_rate", 1e38))
    assert code == 1
    printed = output_of(capsys)
    assert "diverged" in printed and "overflows" in printed and "learning_rate" in printed
    assert "Traceback" not in printed
    assert not out.exists()  # a fresh run that wrote no checkpoint leaves nothing behind


def test_two_processes_with_gloo_give_the_same_loss_curve_shape(corpus, trained, tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "spacy_elmo", *pretrain_args(corpus, out, "--training.max_steps", STEPS, "--training.eval_every", 60,
                                              "--training.checkpoint_every", 60, "--training.log_every", 10,
                                              "--training.threads", 1)]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=170)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "2 processes" in result.stdout
    one, two = _metrics(trained), _metrics(out)
    curve1 = [h["perplexity"] for h in one["history"]]
    curve2 = [h["perplexity"] for h in two["history"]]
    assert [h["step"] for h in two["history"]] == [0, 60, 120]
    assert curve2[0] == pytest.approx(curve1[0], rel=1e-4)  # same initial model, same dev set
    assert curve2[0] > curve2[1] > curve2[2] and curve1[0] > curve1[1] > curve1[2]
    assert 0.5 < curve2[2] / curve1[2] < 1.5
    assert two["train_tokens"] > 1.6 * one["train_tokens"]  # each step consumed one batch per process
    rows = log_rows(out)
    assert [r["world_size"] for r in rows if r["event"] == "start"] == [2]
    load_bilm(out / "options.json", out / "weights.hdf5")


def test_config_overrides_and_errors(corpus, tmp_path, capsys):
    assert run_cli(*pretrain_args(corpus, tmp_path / "x", "--training.no_such_setting", 3)) == 1
    assert "no_such_setting" in output_of(capsys)
    assert run_cli("pretrain", TINY_CONFIG, "--output", tmp_path / "y") == 1
    assert "paths.train" in output_of(capsys)


def test_jsonl_raw_text_directory_corpus_with_adaptive_softmax(tmp_path):
    corpus_dir = tmp_path / "docs"
    corpus_dir.mkdir()
    rng = random.Random(0)
    from spacy_elmo.pretrain.synthetic import sentence

    for part in range(2):
        rows = [{"text": " ".join(" ".join(sentence(rng)).capitalize() for _ in range(3))} for _ in range(60)]
        (corpus_dir / f"part{part}.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf8")
    out = tmp_path / "out"
    code = run_cli("pretrain", TINY_CONFIG, "--output", out, "--paths.train", corpus_dir, "--paths.dev", corpus_dir / "part1.jsonl",
                   "--training.max_steps", 6, "--softmax.type", "adaptive", "--softmax.cutoffs", "[20, 60]",
                   "--training.optimizer", "adagrad", "--training.learning_rate", 0.2, "--training.eval_every", 0)
    assert code == 0
    metrics = _metrics(out)
    assert metrics["train_corpus"]["blank"] == 2 and metrics["train_corpus"]["sentences"] >= 300
    assert metrics["dev"]["perplexity"] > 1
    assert "softmax/W" not in read_hdf5(out / "weights.hdf5")
    load_bilm(out / "options.json", out / "weights.hdf5")


@pytest.mark.parametrize("softmax", ["full", "sampled", "adaptive"])
def test_bf16_autocast_runs_on_cpu(corpus, tmp_path, softmax):
    out = tmp_path / "bf16"
    assert run_cli(*pretrain_args(corpus, out, "--training.max_steps", 4, "--training.precision", "bf16",
                                  "--training.eval_every", 0, "--corpus.dev_max_sentences", 50,
                                  "--softmax.type", softmax, "--softmax.cutoffs", "[20, 60]")) == 0
    assert _metrics(out)["dev"]["perplexity"] < 1000
    load_bilm(out / "options.json", out / "weights.hdf5")


@pytest.mark.parametrize("flags,expected", [(frozenset({"avx512f", "avx512_bf16"}), "bf16"), (frozenset({"avx2"}), "fp32")])
def test_precision_auto_picks_bf16_only_where_the_cpu_has_it(corpus, tmp_path, monkeypatch, capsys, flags, expected):
    """training.precision = "auto": bf16 on a CPU with AVX512_BF16/AMX, fp32 where
    bf16 would be emulated; what ran is said and written to metrics.json."""
    import spacy_elmo.bilm.precision as precision

    monkeypatch.setattr(precision, "cpu_flags", lambda: flags)
    out = tmp_path / "auto"
    assert run_cli(*pretrain_args(corpus, out, "--training.max_steps", 2, "--training.precision", "auto",
                                  "--training.eval_every", 0, "--corpus.dev_max_sentences", 20)) == 0
    assert _metrics(out)["precision"] == expected
    assert f"training.precision auto -> {expected}" in output_of(capsys)
    assert 'precision = "auto"' in (out / "config.cfg").read_text(encoding="utf8")  # the config as given
