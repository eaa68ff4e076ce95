"""scripts/report.py turns `spacy evaluate` outputs into the comparison table and chart."""
import json
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

from tests.scripts.test_prepare import load_script


def summary(best: int, last: int, stopped: str, seconds: float) -> dict:
    return {"best_step": best, "best_score": 0.5, "best_epoch": 1, "last_step": last, "last_epoch": 2, "n_evaluations": 3,
            "stopped_by": stopped, "patience": 200, "eval_frequency": 25, "max_steps": 3000, "train_seconds": seconds}


def write_seed_metrics(metrics_dir: Path, task: str, key: str, scores: Dict[Tuple[str, str], List[Optional[float]]],
                       training: Callable[[int], dict]) -> None:
    """One metrics file per (features, fraction) and seed (list position), named as scripts/run.py names them;
    None: no file for that seed."""
    run_name = load_script("run").run_name
    for (features, fraction), values in scores.items():
        for seed, value in enumerate(values):
            if value is not None:
                path = metrics_dir / f"{run_name(task, features, fraction, seed)}.json"
                path.write_text(json.dumps({key: value, "training": training(seed)}))


def test_report_table_and_chart(tmp_path):
    scores = {"ner_elmo_10": 0.80, "ner_tok2vec_10": 0.70, "ner_elmo_25": 0.85, "ner_tok2vec_25": 0.80,
              "ner_elmo_100": 0.90, "ner_tok2vec_100": 0.88,
              "ner_elmo_10_seed1": 0.84, "ner_tok2vec_10_seed1": 0.68}  # ci trains seed 1 at 10% too (one pair)
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
    assert "| ner, 10% of train (F1, mean of 2 seeds) | 82.00 | 69.00 | +13.00 |" in table
    assert "| ner, 25% of train (F1) | 85.00 | 80.00 | +5.00 |" in table
    assert "| textcat (macro F1) | 95.00 | n/a | n/a |" in table
    assert "10 steps, 5,000 training tokens in 1.5 min; dev perplexity 120.5 (forward 118.0, backward 123.0)" in table
    assert "| sentiment, 10% of train (accuracy) | n/a | n/a | n/a |" in table  # ci: one seed, nothing evaluated yet
    assert (tmp_path / "results.png").stat().st_size > 1000


def test_report_sentiment_seeds_training_steps_and_stock_baseline(tmp_path):
    """demo: sentiment accuracy is the mean over the preset's seeds, with a per-seed table; every pipeline's
    best and last step; the tok2vec baseline against spaCy's stock ner config."""
    accuracy = {("elmo", "10"): [0.70, 0.72, 0.74], ("tok2vec", "10"): [0.68, 0.69, 0.73],
                ("elmo", "100"): [0.80], ("tok2vec", "100"): [0.79]}
    write_seed_metrics(tmp_path, "sentiment", "cats_micro_f", accuracy, lambda seed: summary(100 + seed, 300, "patience", 61.4))
    (tmp_path / "ner_tok2vec_10.json").write_text(json.dumps({"ents_f": 0.70, "training": summary(1200, 2000, "max_steps", 90)}))
    (tmp_path / "ner_stock_10.json").write_text(json.dumps({"ents_f": 0.675, "training": summary(2400, 4000, "patience", 300)}))
    load_script("report").main(tmp_path, size="demo", elmo_dir=tmp_path / "no-elmo")
    table = (tmp_path / "results.md").read_text()
    assert "| sentiment, 10% of train (accuracy, mean of 3 seeds) | 72.00 | 70.00 | +2.00 |" in table
    assert "| sentiment, 100% of train (accuracy) | 80.00 | 79.00 | +1.00 |" in table
    assert "| 10% of train | 0 / 1 / 2 | 70.00 / 72.00 / 74.00 | 68.00 / 69.00 / 73.00 | 3 of 3 |" in table
    assert "| sentiment, 10%, seed 2 | 102 / 300 (patience), 61 s | 102 / 300 (patience), 61 s |" in table
    assert "| ner, 10%, seed 0 | n/a | 1200 / 2000 (max_steps), 90 s |" in table
    assert "| spaCy stock efficiency config | 67.50 | 2400 / 4000 (patience), 300 s |" in table
    assert "| baseline minus stock | +2.50 | |" in table
    # a seed without its metrics: no mean over fewer seeds than listed
    (tmp_path / "sentiment_elmo_10_seed1.json").unlink()
    load_script("report").main(tmp_path, size="demo", elmo_dir=tmp_path / "no-elmo")
    assert "| sentiment, 10% of train (accuracy, mean of 3 seeds) | n/a | 70.00 | n/a |" in (tmp_path / "results.md").read_text()


def test_report_places_both_sentiment_models_against_spacys_stock_textcat(tmp_path):
    """demo: the stock bag-of-words textcat on sentiment, its mean over its seeds beside both models' means, each seed's
    accuracy and training steps; a missing stock seed gives no mean (a mean over fewer seeds than listed would mislead)."""
    accuracy = {("elmo", "10"): [0.64, 0.65, 0.66], ("tok2vec", "10"): [0.66, 0.65, 0.67],
                ("elmo", "100"): [0.72], ("tok2vec", "100"): [0.71]}
    write_seed_metrics(tmp_path, "sentiment", "cats_micro_f", accuracy, lambda seed: summary(150, 350, "patience", 45))
    for name, value, best in (("sentiment_stock_10", 0.65, 800), ("sentiment_stock_10_seed1", 0.66, 750),
                              ("sentiment_stock_10_seed2", 0.67, 325), ("sentiment_stock_100", 0.745, 1025)):
        (tmp_path / f"{name}.json").write_text(json.dumps({"cats_micro_f": value, "training": summary(best, best + 200, "patience", 30)}))
    load_script("report").main(tmp_path, size="demo", elmo_dir=tmp_path / "no-elmo")
    table = (tmp_path / "results.md").read_text()
    assert "spaCy's stock `spacy init config --pipeline textcat --optimize efficiency` (a bag of words" in table
    assert ("| 10% of train, mean of 3 seeds | 65.00 | 66.00 | 66.00 | 65.00 (seed 0) / 66.00 (seed 1) / 67.00 (seed 2) | "
            "800 / 1000 (patience), 30 s; 750 / 950 (patience), 30 s; 325 / 525 (patience), 30 s |") in table
    assert "| 100% of train | 72.00 | 71.00 | 74.50 | 74.50 (seed 0) | 1025 / 1225 (patience), 30 s |" in table
    (tmp_path / "sentiment_stock_10_seed2.json").unlink()
    load_script("report").main(tmp_path, size="demo", elmo_dir=tmp_path / "no-elmo")
    assert "| 10% of train, mean of 3 seeds | 65.00 | 66.00 | n/a | 65.00 (seed 0) / 66.00 (seed 1) / n/a (seed 2) |" in (
        tmp_path / "results.md").read_text()
    # ci trains no stock sentiment: no such table
    load_script("report").main(tmp_path, size="ci", elmo_dir=tmp_path / "no-elmo")
    assert "--pipeline textcat" not in (tmp_path / "results.md").read_text()


def test_report_reads_only_the_sentiment_runs_of_the_preset(tmp_path):
    """ci trains sentiment with tok2vec alone: an ELMo metrics file left by an earlier preset is not reported."""
    (tmp_path / "sentiment_tok2vec_10.json").write_text(json.dumps({"cats_micro_f": 0.6, "training": summary(20, 20, "max_steps", 8)}))
    (tmp_path / "sentiment_elmo_10.json").write_text(json.dumps({"cats_micro_f": 0.9, "training": summary(20, 20, "max_steps", 7)}))
    load_script("report").main(tmp_path, size="ci", elmo_dir=tmp_path / "no-elmo")
    table = (tmp_path / "results.md").read_text()
    assert "| sentiment, 10% of train (accuracy) | n/a | 60.00 | n/a |" in table
    assert "| sentiment, 10% | n/a | 20 / 20 (max_steps), 8 s |" in table


def test_report_says_ner_reads_the_adapted_bilm_and_what_each_stage_gives(tmp_path):
    """demo: ner's ELMo rows are the adapted biLM's; the ner before adaptation at 10% is the mean of its 3 seeds against
    tok2vec's same seeds, with a per-seed row; the adaptation line gives both perplexities and what pretraining and
    adaptation each add, seed by seed."""
    metrics, training = tmp_path / "metrics", tmp_path / "training"
    metrics.mkdir()
    for seed, (base, before, adapted) in enumerate([(0.70, 0.71, 0.73), (0.68, 0.70, 0.69), (0.69, 0.70, 0.72)]):
        suffix = f"_seed{seed}" if seed else ""
        (metrics / f"ner_tok2vec_10{suffix}.json").write_text(json.dumps({"ents_f": base, "training": summary(1200, 2000, "max_steps", 90)}))
        (metrics / f"ner_elmo_10{suffix}.json").write_text(json.dumps({"ents_f": adapted}))
        (metrics / f"ner_unadapted_10{suffix}.json").write_text(json.dumps({"ents_f": before, "training": summary(1000, 1500, "patience", 80)}))
    for name, perplexity in (("elmo_adapt_frozen", 234.08), ("elmo_adapted", 179.36)):
        (training / "demo" / name).mkdir(parents=True)
        (training / "demo" / name / "metrics.json").write_text(json.dumps({"dev": {"perplexity": perplexity}, "train_tokens": 402142}))
    load_script("report").main(metrics, size="demo", elmo_dir=tmp_path / "no-elmo", training_dir=training)
    table = (metrics / "results.md").read_text()
    assert "| ner, 10% of train (F1, mean of 3 seeds) | 71.33 | 69.00 | +2.33 |" in table
    assert "| ner, 10% of train, biLM before adaptation (F1, mean of 3 seeds) | 70.33 | 69.00 | +1.33 |" in table
    assert "| 10% of train, biLM before adaptation | 0 / 1 / 2 | 71.00 / 70.00 / 70.00 | 70.00 / 68.00 / 69.00 | 3 of 3 |" in table
    assert "ner's ELMo features come from this biLM adapted to CoNLL-2003's training text" in table
    assert "402,142 tokens" in table and "234.1 with the biLM frozen" in table and "-> 179.4 adapted" in table
    assert ("ner at 10% (mean of 3 seeds): pretrained biLM 70.33, adapted 71.33, adaptation +1.00 F1 (adapted ahead in 2 of 3), "
            "pretraining +1.33 F1 over tok2vec" in table)
    assert "| ner, 10%, biLM before adaptation, seed 2 | 1000 / 1500 (patience), 80 s | 1200 / 2000 (max_steps), 90 s |" in table


def test_report_without_adaptation_has_no_stage_rows(tmp_path):
    """ci (ner on the pretrained biLM) and a size without a preset: no adaptation line
    and no rows before adaptation, even where such a metrics file was left behind."""
    for size in ("ci", "gpu"):
        (tmp_path / "ner_tok2vec_10.json").write_text(json.dumps({"ents_f": 0.70}))
        (tmp_path / "ner_elmo_10.json").write_text(json.dumps({"ents_f": 0.72}))
        (tmp_path / "ner_unadapted_10.json").write_text(json.dumps({"ents_f": 0.73}))
        load_script("report").main(tmp_path, size=size, elmo_dir=tmp_path / "no-elmo", textcat=False)
        table = (tmp_path / "results.md").read_text()
        assert "before adaptation" not in table and "adapted" not in table, size
        assert "72.00" in table, size  # the ner pair's own row (gpu) or seed 0 of its per-seed row (ci: 2 seeds)


def test_report_ner_is_the_mean_of_the_presets_seeds_with_a_per_seed_table(tmp_path):
    """demo: each ner row is the mean F1 of 3 seeds (n/a if a seed is missing), a per-seed table says in how many
    seeds ELMo is ahead, and every seed's training has its row in the training steps table."""
    f1 = {("elmo", "10"): [0.80, 0.82, 0.84], ("tok2vec", "10"): [0.76, 0.78, 0.79],
          ("elmo", "25"): [0.85, 0.86, 0.87], ("tok2vec", "25"): [0.83, 0.87, 0.84],
          ("elmo", "100"): [0.90, 0.91, None], ("tok2vec", "100"): [0.89, 0.90, 0.88]}  # ELMo's seed 2 at 100%: missing
    write_seed_metrics(tmp_path, "ner", "ents_f", f1, lambda seed: summary(250 * (seed + 1), 1500, "patience", 70 + seed))
    load_script("report").main(tmp_path, size="demo", elmo_dir=tmp_path / "no-elmo")
    table = (tmp_path / "results.md").read_text()
    assert "| ner, 10% of train (F1, mean of 3 seeds) | 82.00 | 77.67 | +4.33 |" in table
    assert "| ner, 25% of train (F1, mean of 3 seeds) | 86.00 | 84.67 | +1.33 |" in table
    assert "| ner, 100% of train (F1, mean of 3 seeds) | n/a | 89.00 | n/a |" in table
    ner_table = table[table.index("| ner F1 per seed |"):table.index("| sentiment accuracy per seed |")]
    assert "| 10% of train | 0 / 1 / 2 | 80.00 / 82.00 / 84.00 | 76.00 / 78.00 / 79.00 | 3 of 3 |" in ner_table
    assert "| 25% of train | 0 / 1 / 2 | 85.00 / 86.00 / 87.00 | 83.00 / 87.00 / 84.00 | 2 of 3 |" in ner_table
    assert "| 100% of train | 0 / 1 / 2 | 90.00 / 91.00 / n/a | 89.00 / 90.00 / 88.00 | 2 of 3 |" in ner_table
    assert "| ner, 25%, seed 2 | 750 / 1500 (patience), 72 s | 750 / 1500 (patience), 72 s |" in table
    assert "| ner, 100%, seed 2 | n/a | 750 / 1500 (patience), 72 s |" in table
    assert "Every run trains beside one other, one process each (scripts/run.py train-all" in table
