"""`spacy train` / `spacy evaluate` with the shipped configs on tiny data and a tiny random biLM."""
import json
import random
import subprocess
import sys
from pathlib import Path

import numpy
import pytest
import spacy
from spacy.tokens import DocBin, Span

CONFIGS = Path(__file__).parent.parent / "configs"
NAMES = ["Alice", "Bob", "Carol", "Paris", "London", "Oslo"]


def _corpora(tmp_path: Path):
    nlp = spacy.blank("en")
    rng = random.Random(0)
    ner, cats = DocBin(), DocBin()
    for i in range(24):
        a, b = rng.choice(NAMES), rng.choice(NAMES)
        mood = "great" if i % 2 else "awful"
        doc = nlp(f"Yesterday {a} went to {b} and it was {mood} .")
        doc.ents = [Span(doc, k, k + 1, "PERSON" if doc[k].text in NAMES[:3] else "LOC") for k in (1, 4)]
        ner.add(doc)
        cat_doc = nlp(doc.text)
        cat_doc.cats = {"POS": float(i % 2), "NEG": float(1 - i % 2)}
        cats.add(cat_doc)
    ner.to_disk(tmp_path / "ner.spacy")
    cats.to_disk(tmp_path / "cats.spacy")
    return tmp_path / "ner.spacy", tmp_path / "cats.spacy"


def _train(config: str, data: Path, weights: Path, out: Path, width_key: str, extra=()):
    cmd = [
        sys.executable, "-m", "spacy", "train", str(CONFIGS / config), "--output", str(out),
        "--paths.train", str(data), "--paths.dev", str(data), "--paths.elmo_weights", str(weights),
        "--training.max_steps", "6", "--training.eval_frequency", "3", f"--{width_key}", "16", *extra,
    ]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    return out / "model-last"


def _evaluate(model: Path, data: Path, tmp_path: Path) -> dict:
    metrics = tmp_path / f"{model.parent.name}-metrics.json"
    result = subprocess.run([sys.executable, "-m", "spacy", "evaluate", str(model), str(data), "--output", str(metrics)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(metrics.read_text())


def _roundtrip_equal(model: Path, tmp_path: Path, texts):
    nlp = spacy.load(model)
    docs = list(nlp.pipe(texts))
    nlp.to_disk(tmp_path / "again")
    again = list(spacy.load(tmp_path / "again").pipe(texts))
    for a, b in zip(docs, again):
        numpy.testing.assert_array_equal(a._.elmo_layers, b._.elmo_layers)
        assert [(e.text, e.label_) for e in a.ents] == [(e.text, e.label_) for e in b.ents]
        assert a.cats == b.cats
    return docs


def test_train_and_evaluate_ner(tmp_path, tiny_weights_dir):
    ner, _ = _corpora(tmp_path)
    model = _train("ner_elmo.cfg", ner, tiny_weights_dir, tmp_path / "ner", "components.ner.model.tok2vec.width")
    assert "ents_f" in _evaluate(model, ner, tmp_path)
    docs = _roundtrip_equal(model, tmp_path, ["Yesterday Alice went to Oslo .", "Bob"])
    assert docs[0]._.elmo_layers.shape == (3, 6, 16)


def test_train_and_evaluate_textcat(tmp_path, tiny_weights_dir):
    _, cats = _corpora(tmp_path)
    model = _train("textcat_elmo.cfg", cats, tiny_weights_dir, tmp_path / "textcat", "components.textcat.model.tok2vec.width")
    metrics = _evaluate(model, cats, tmp_path)
    assert "cats_score" in metrics
    docs = _roundtrip_equal(model, tmp_path, ["it was great .", "awful"])
    assert set(docs[0].cats) == {"POS", "NEG"} and sum(docs[0].cats.values()) == pytest.approx(1.0, abs=1e-5)


def test_baseline_configs_train(tmp_path):
    ner, cats = _corpora(tmp_path)
    for config, data in (("ner_tok2vec.cfg", ner), ("textcat_tok2vec.cfg", cats)):
        cmd = [sys.executable, "-m", "spacy", "train", str(CONFIGS / config), "--output", str(tmp_path / config),
               "--paths.train", str(data), "--paths.dev", str(data), "--training.max_steps", "3", "--training.eval_frequency", "3"]
        result = subprocess.run(cmd, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
