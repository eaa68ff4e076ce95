"""`spacy train` / `spacy evaluate` with the shipped configs on tiny data and a tiny random biLM."""
import json
import random
import shutil
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


def _train(config: str, data: Path, weights: Path, out: Path, extra=()):
    """The shipped config as the project runs it: weights through [initialize], listener width left null."""
    cmd = [
        sys.executable, "-m", "spacy", "train", str(CONFIGS / config), "--output", str(out),
        "--paths.train", str(data), "--paths.dev", str(data), "--paths.elmo_weights", str(weights),
        "--training.max_steps", "6", "--training.eval_frequency", "3", *extra,
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
    weights = tmp_path / "training_time_weights"
    shutil.copytree(tiny_weights_dir, weights)
    model = _train("ner_elmo.cfg", ner, weights, tmp_path / "ner")
    config = (model / "config.cfg").read_text(encoding="utf8")
    assert "spacy-elmo.WeightsLoader.v1" in config and "width = null" in config
    assert "ents_f" in _evaluate(model, ner, tmp_path)
    docs = _roundtrip_equal(model, tmp_path, ["Yesterday Alice went to Oslo .", "Bob"])
    assert docs[0]._.elmo_layers.shape == (3, 6, 16)
    # The saved pipeline never reads the directory its weights came from: broken, then gone.
    (weights / "weights.hdf5").write_bytes(b"replaced by a later experiment")
    _same_predictions(model, docs)
    shutil.rmtree(weights)
    _same_predictions(model, docs)
    _elmo_reaches_the_ner_input(model)


def _elmo_reaches_the_ner_input(model: Path) -> None:
    """ner_elmo.cfg puts the listener at the input of ner's tok2vec: its width came from the biLM (2 x 8), and the
    tok2vec's output changes when the stored ELMo layers do."""
    nlp = spacy.load(model)
    tok2vec = nlp.get_pipe("ner").model.get_ref("tok2vec")
    listeners = [node for node in tok2vec.walk() if node.name == "elmo-listener"]
    assert len(listeners) == 1 and listeners[0].get_dim("nO") == 16
    doc = nlp("Yesterday Alice went to Oslo .")
    before = tok2vec.predict([doc])  # the parser's tok2vec ref: the tok2vec, then its projection to the hidden width
    doc._.elmo_layers = doc._.elmo_layers * 0.0
    after = tok2vec.predict([doc])
    assert before.shape == after.shape and before.shape[0] == 6
    assert not numpy.allclose(before, after)


def _same_predictions(model: Path, expected) -> None:
    docs = list(spacy.load(model).pipe([doc.text for doc in expected]))
    for a, b in zip(expected, docs):
        numpy.testing.assert_array_equal(a._.elmo_layers, b._.elmo_layers)
        assert [(e.text, e.label_) for e in a.ents] == [(e.text, e.label_) for e in b.ents]


def test_train_and_evaluate_textcat(tmp_path, tiny_weights_dir):
    _, cats = _corpora(tmp_path)
    # A width set by hand is still accepted when it is right (2 x projection_dim of the tiny biLM) ...
    model = _train("textcat_elmo.cfg", cats, tiny_weights_dir, tmp_path / "textcat", ["--components.textcat.model.tok2vec.width", "16"])
    metrics = _evaluate(model, cats, tmp_path)
    assert "cats_score" in metrics
    docs = _roundtrip_equal(model, tmp_path, ["it was great .", "awful"])
    assert set(docs[0].cats) == {"POS", "NEG"} and sum(docs[0].cats.values()) == pytest.approx(1.0, abs=1e-5)


def test_a_wrong_width_fails_naming_both(tmp_path, tiny_weights_dir):
    _, cats = _corpora(tmp_path)
    cmd = [sys.executable, "-m", "spacy", "train", str(CONFIGS / "textcat_elmo.cfg"), "--output", str(tmp_path / "out"),
           "--paths.train", str(cats), "--paths.dev", str(cats), "--paths.elmo_weights", str(tiny_weights_dir),
           "--components.textcat.model.tok2vec.width", "1024", "--training.max_steps", "1"]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode != 0
    assert "width = 1024" in result.stderr and "produces width 16" in result.stderr


def test_baseline_configs_train(tmp_path):
    ner, cats = _corpora(tmp_path)
    for config, data in (("ner_tok2vec.cfg", ner), ("textcat_tok2vec.cfg", cats)):
        cmd = [sys.executable, "-m", "spacy", "train", str(CONFIGS / config), "--output", str(tmp_path / config),
               "--paths.train", str(data), "--paths.dev", str(data), "--training.max_steps", "3", "--training.eval_frequency", "3"]
        result = subprocess.run(cmd, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr


def test_frozen_elmo_without_its_loader_is_refused_with_the_fix(tmp_path, tiny_weights_dir):
    """spaCy never initializes a frozen component, so the weights loader in [initialize] would not run:
    `spacy train` stops before the first step and says what to change."""
    ner, _ = _corpora(tmp_path)
    cmd = [sys.executable, "-m", "spacy", "train", str(CONFIGS / "ner_elmo.cfg"), "--output", str(tmp_path / "out"),
           "--paths.train", str(ner), "--paths.dev", str(ner), "--paths.elmo_weights", str(tiny_weights_dir),
           "--training.frozen_components", '["elmo"]', "--training.max_steps", "1"]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode != 0
    assert 'Remove "elmo" from frozen_components and keep it in annotating_components' in result.stderr, result.stderr[-2000:]
    assert not (tmp_path / "out" / "model-last").exists()


def test_frozen_elmo_whose_weights_arrive_trains(tmp_path, tiny_weights_dir):
    """Frozen with the weights in the pipe's own `weights` setting (the spacy-transformers habit): spaCy skips
    its initialize, the weights arrive anyway, and the ner learns on real features."""
    ner, _ = _corpora(tmp_path)
    model = _train("ner_elmo.cfg", ner, tiny_weights_dir, tmp_path / "frozen",
                   ["--training.frozen_components", '["elmo"]', "--components.elmo.weights", str(tiny_weights_dir)])
    docs = _roundtrip_equal(model, tmp_path, ["Yesterday Alice went to Oslo ."])
    assert docs[0]._.elmo_layers.shape == (3, 6, 16) and numpy.abs(docs[0]._.elmo_layers).max() > 0
    _elmo_reaches_the_ner_input(model)
