"""bench/precision_fidelity.py: a pipeline trained in float32, scored with the elmo pipe in each precision
through spaCy's own config override, as a user switches it."""
import json
import subprocess
import sys
from pathlib import Path

from tests.test_training import _corpora, _train

ROOT = Path(__file__).resolve().parent.parent.parent


def test_fidelity_table_scores_each_precision_of_a_trained_pipeline(tmp_path, tiny_weights_dir):
    ner, _ = _corpora(tmp_path)
    model = _train("ner_elmo.cfg", ner, tiny_weights_dir, tmp_path / "ner")
    out = tmp_path / "fidelity.md"
    cmd = [sys.executable, "bench/precision_fidelity.py", "--run", "tiny_ner", str(model), str(ner), "--output", str(out)]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = out.read_text().splitlines()
    assert lines[0] == "| pipeline | metric | float32 | bfloat16 | int8 |"
    row = lines[2].split(" | ")
    assert row[0] == "| tiny_ner" and row[1] == "ents_f"
    # the float32 column is spacy train's own last evaluation of the same pipeline on the same docs (dev = train)
    expected = json.loads((model / "meta.json").read_text())["performance"]["ents_f"]
    assert row[2].split(",")[0] == f"{100 * expected:.2f}"
    assert "(+" in row[3] or "(-" in row[3]  # differences are shown against float32


def test_a_missing_pipeline_is_a_message(tmp_path):
    cmd = [sys.executable, "bench/precision_fidelity.py", "--run", "x", str(tmp_path / "nope"), str(tmp_path / "t.spacy")]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "does not exist" in result.stderr and "Traceback" not in result.stderr
