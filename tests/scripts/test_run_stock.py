"""spaCy's stock configs through scripts/run.py as a user runs them: `train sentiment stock 10 --size demo` writes the
stock config with `spacy init config --pipeline textcat --optimize efficiency`, trains it with the preset's sentiment
loop and writes its training summary; `evaluate` adds that summary to the metrics the report reads."""
import json
import random
import subprocess
import sys
from pathlib import Path

import spacy
from spacy.tokens import DocBin

from tests.scripts.test_prepare import SCRIPTS

POSITIVE = ["a warm , funny and moving film", "brilliant acting and a clever script", "the best comedy of the year",
            "a joy to watch from start to finish", "smart , tender and beautifully shot"]
NEGATIVE = ["a dull , lifeless mess", "the plot is tedious and the jokes fall flat", "a boring waste of two hours",
            "clumsy , shallow and far too long", "the worst script in years"]


def write_snippets(path: Path, n: int, seed: int) -> None:
    """n labelled snippets (POS/NEG) as prepare_sentiment.py writes them, drawn from the two small lists above."""
    rng = random.Random(seed)
    nlp = spacy.blank("en")
    docs = DocBin()
    for i in range(n):
        positive = i % 2 == 0
        doc = nlp(rng.choice(POSITIVE if positive else NEGATIVE))
        doc.cats = {"POS": float(positive), "NEG": float(not positive)}
        docs.add(doc)
    path.parent.mkdir(parents=True, exist_ok=True)
    docs.to_disk(path)


def run_step(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPTS / "run.py"), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


def test_the_stock_sentiment_run_trains_spacys_own_textcat_config_and_reports_its_steps(tmp_path):
    corpus = tmp_path / "corpus" / "demo" / "sentiment"
    write_snippets(corpus / "train_10.spacy", 24, seed=0)
    write_snippets(corpus / "dev.spacy", 10, seed=1)
    write_snippets(corpus / "test.spacy", 10, seed=2)

    trained = run_step(tmp_path, "train", "sentiment", "stock", "10", "--size", "demo", "--seed", "1")
    assert trained.returncode == 0, trained.stdout[-3000:] + trained.stderr[-3000:]
    assert "spacy init config training/demo/runs/sentiment_stock_10_seed1/stock.cfg --lang en --pipeline textcat" in trained.stdout
    folder = tmp_path / "training" / "demo" / "runs" / "sentiment_stock_10_seed1"
    config = spacy.util.load_config(folder / "stock.cfg")
    assert config["components"]["textcat"]["model"]["@architectures"].startswith("spacy.TextCatBOW")
    summary = json.loads((folder / "train_summary.json").read_text())
    # the preset's sentiment loop: patience 200, evaluations every 25 steps, cap 3,000
    assert (summary["patience"], summary["eval_frequency"], summary["max_steps"]) == (200, 25, 3000)
    assert summary["stopped_by"] == "patience" and summary["last_step"] - summary["best_step"] >= 200

    evaluated = run_step(tmp_path, "evaluate", "sentiment", "stock", "10", "--size", "demo", "--seed", "1")
    assert evaluated.returncode == 0, evaluated.stdout[-3000:] + evaluated.stderr[-3000:]
    metrics = json.loads((tmp_path / "metrics" / "demo" / "runs" / "sentiment_stock_10_seed1.json").read_text())
    assert metrics["cats_micro_f"] > 0.6  # it learned: above chance (half the test snippets are POS)
    assert metrics["training"] == summary


def test_a_stock_run_the_size_does_not_train_is_a_clear_error(tmp_path):
    result = run_step(tmp_path, "train", "sentiment", "stock", "10", "--size", "ci")
    assert result.returncode != 0
    assert "No pipeline sentiment stock 10 in size ci" in result.stdout + result.stderr
