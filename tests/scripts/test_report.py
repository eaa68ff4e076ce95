"""scripts/report.py turns `spacy evaluate` outputs into the comparison table and chart."""
import json

from tests.scripts.test_prepare import load_script


def test_report_table_and_chart(tmp_path):
    scores = {"ner_elmo_10": 0.80, "ner_tok2vec_10": 0.70, "ner_elmo_25": 0.85, "ner_tok2vec_25": 0.80,
              "ner_elmo_100": 0.90, "ner_tok2vec_100": 0.88}
    for name, f in scores.items():
        (tmp_path / f"{name}.json").write_text(json.dumps({"ents_f": f}))
    (tmp_path / "textcat_elmo_100.json").write_text(json.dumps({"cats_macro_f": 0.95, "cats_micro_f": 0.96}))
    # the baseline's textcat is missing: the table says so instead of failing
    elmo_dir = tmp_path / "elmo"
    elmo_dir.mkdir()
    (elmo_dir / "metrics.json").write_text(json.dumps({"step": 10, "train_tokens": 5000, "wall_seconds": 90.0, "dev": {
        "perplexity": 120.5, "forward_perplexity": 118.0, "backward_perplexity": 123.04}}))
    load_script("report").main(tmp_path, size="ci", elmo_dir=elmo_dir)
    table = (tmp_path / "results.md").read_text()
    assert "| ner, 10% of train (F1) | 80.00 | 70.00 | +10.00 |" in table
    assert "| textcat (macro F1) | 95.00 | n/a | n/a |" in table
    assert "10 steps, 5,000 training tokens in 1.5 min; dev perplexity 120.5 (forward 118.0, backward 123.0)" in table
    assert (tmp_path / "results.png").stat().st_size > 1000
