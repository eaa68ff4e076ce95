"""bench/gpu_demo.py end to end on CPU (`run --device cpu --tiny`), as a user runs it, on tiny data made here:
the GPU demo's steps (pretrain, spacy train x 4, spacy evaluate x 4, report) cannot rot between GPU runs."""
import gzip
import importlib.util
import json
import os
import random
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import pytest
import spacy
from spacy.tokens import DocBin, Span

ROOT = Path(__file__).resolve().parents[2]
NAMES = ["Alice", "Bob", "Carol", "Paris", "London", "Oslo"]
WORDS = "the a news said on in of to and was is for by with market company year people government".split()


def make_data(root: Path) -> Path:
    """The layout `bench/gpu_demo.py data` writes: conll2003/*.spacy and lm/*_train.txt.gz + dev.txt.gz."""
    nlp = spacy.blank("en")
    rng = random.Random(0)
    conll = root / "conll2003"
    conll.mkdir(parents=True)
    for name, n in (("train", 30), ("train_10", 10), ("dev_slice", 8), ("test", 12)):
        docs = DocBin()
        for _ in range(n):
            a, b = rng.choice(NAMES), rng.choice(NAMES)
            doc = nlp(f"Yesterday {a} went to {b} .")
            doc.ents = [Span(doc, k, k + 1, "PER" if doc[k].text in NAMES[:3] else "LOC") for k in (1, 4)]
            docs.add(doc)
        docs.to_disk(conll / f"{name}.spacy")
    lm = root / "lm"
    lm.mkdir()
    for name, n in (("news_train.txt.gz", 600), ("dev.txt.gz", 40)):
        with gzip.open(lm / name, "wt", encoding="utf8") as fout:
            for _ in range(n):
                fout.write(" ".join(rng.choice(WORDS + NAMES) for _ in range(rng.randint(3, 12))) + "\n")
    return root


@pytest.mark.slow
def test_gpu_demo_tiny_on_cpu(tmp_path):
    data, out = make_data(tmp_path / "data"), tmp_path / "out"
    cmd = [sys.executable, "bench/gpu_demo.py", "run", "--device", "cpu", "--tiny", "--data", str(data),
           "--work", str(tmp_path / "work"), "--out", str(out), "--seeds", "0"]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    results = json.loads((out / "results.json").read_text())
    assert results["finished"] and not results["skipped"]
    assert results["bilm"]["steps"] > 0 and results["bilm"]["train_tokens"] > 0
    assert results["bilm"]["dev_perplexity"] > 0 and results["bilm"]["stop_reason"].startswith("max_steps")
    assert results["steps"]["pretrain"]["status"] == "ok"
    ner = {r["name"]: r for r in results["ner"]}
    assert set(ner) == {"ner_elmo_10", "ner_tok2vec_10", "ner_elmo_100", "ner_tok2vec_100"}
    for record in ner.values():
        assert record["train_exit"] == 0 and 0.0 <= record["ents_f"] <= 1.0, record
        assert record["stopped_by"] == "max_steps=4" and not record["cap_hit"], record
    table = (out / "results.md").read_text()
    for fraction in ("10", "100"):
        row = next(line for line in table.splitlines() if line.startswith(f"| ner, {fraction}% of train (F1) |"))
        assert "n/a" not in row, row
    assert "textcat" not in table and "biLM training:" in table and "tokens/s" in table
    assert "ner budget, the same for ELMo and tok2vec: 10% of train 4 steps" in table and "safety cap: none." in table
    assert (out / "results.png").stat().st_size > 1000 and (out / "demo.log").stat().st_size > 0


def _module():
    spec = importlib.util.spec_from_file_location("gpu_demo", ROOT / "bench" / "gpu_demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_elmo_and_tok2vec_get_the_same_step_budget_and_a_cap_hit_is_recorded(tmp_path, monkeypatch):
    """The ner comparison is at equal steps (not equal wall clock); the cap only guards against a hang."""
    module = _module()
    args = Namespace(tiny=False, deadline=0, pretrain_seconds=0, data=str(tmp_path), work=str(tmp_path / "w"),
                     out=str(tmp_path / "o"), device="cpu", seeds="0", ner_scale=1.0, ner_steps="10=300,100=450")
    demo = module.Demo(args)
    assert demo.plan["ner_steps"] == {"10": 300, "100": 450}
    assert demo.plan["ner_eval_frequency"] == {"10": 75, "100": 150}  # as many evaluations as the plan's
    (demo.work / "elmo").mkdir(parents=True)
    (demo.work / "elmo" / "weights.hdf5").write_bytes(b"")
    (demo.work / "elmo" / "options.json").write_text('{"lstm": {"projection_dim": 128}}')
    commands = {}

    def fake_run(cmd, log, cap, env, prefix=""):
        cmd = [str(c) for c in cmd]
        if cmd[2:4] == ["spacy", "train"]:
            features = "elmo" if "ner_elmo" in cmd[4] else "tok2vec"
            commands[features] = cmd
            return (-2, cap, True, "  0     120   1.00   2.00   3.00") if features == "elmo" else (0, 5.0, False, "")
        return 0, 1.0, False, ""

    monkeypatch.setattr(module, "run_logged", fake_run)
    for features in ("elmo", "tok2vec"):
        demo.ner(features, "10", 0)

    def setting(cmd, name):
        return cmd[cmd.index(name) + 1]

    for name in ("--training.max_steps", "--training.eval_frequency", "--training.batcher.size.start"):
        assert setting(commands["elmo"], name) == setting(commands["tok2vec"], name), name
    assert setting(commands["elmo"], "--training.max_steps") == "300"
    records = {r["features"]: r for r in demo.results["ner"]}
    assert records["elmo"]["cap_hit"] and records["elmo"]["stopped_by"] == "wall-clock safety cap (270s)"  # 90 s scaled with the 3x budget
    assert records["elmo"]["last_logged_step"] == 120
    assert not records["tok2vec"]["cap_hit"] and records["tok2vec"]["stopped_by"] == "max_steps=300"
    assert "Stopped early by the wall-clock safety cap: ner_elmo_10 (step ~120)." in demo.markdown_rest("")
    with pytest.raises(SystemExit, match="fractions are 10, 100"):
        module.parse_ner_steps("25=100")


def test_seed_table(tmp_path):
    """Seeds 1-2 only run on the GPU when time allows, so their table is checked here on made-up scores."""
    module = _module()
    args = Namespace(tiny=True, deadline=0, pretrain_seconds=0, data=str(tmp_path), work=str(tmp_path / "w"),
                     out=str(tmp_path / "o"), device="cpu", seeds="0,1,2", ner_scale=1.0)
    demo = module.Demo(args)
    scores = {("elmo", 0): 0.70, ("elmo", 1): 0.72, ("tok2vec", 0): 0.68, ("tok2vec", 1): 0.73, ("elmo", 2): 0.71}
    demo.results["ner"] = [{"name": f"{f}_{s}", "features": f, "fraction": "10", "seed": s, "ents_f": v}
                           for (f, s), v in scores.items()]
    table = demo.seed_table()
    assert "| 10% of train, seeds 0, 1 | 70.00 / 72.00 (mean 71.00) | 68.00 / 73.00 (mean 70.50) | +0.50 | 1 of 2 |" in table


def test_extra_seeds_run_as_pairs_or_not_at_all(tmp_path, monkeypatch):
    """The H100 run of 2026-11-26 ran seed 2's ELMo model, then had no time for its baseline: a seed's ELMo
    run starts only when its tok2vec run fits too."""
    module = _module()
    args = Namespace(tiny=True, deadline=0, pretrain_seconds=0, data=str(tmp_path), work=str(tmp_path / "w"),
                     out=str(tmp_path / "o"), device="cpu", seeds="0,1,2", ner_scale=1.0)
    demo = module.Demo(args)
    demo.results["ner"] = [{"features": f, "fraction": "10", "seed": 0, "train_seconds": 30.0, "evaluate_seconds": 10.0}
                           for f in ("elmo", "tok2vec")]  # each run ~44 s (1.1 x 40), a pair ~88 s
    clock = {"left": 100.0}
    ran = []

    def fake_ner(features, fraction, seed):
        ran.append((features, seed))
        clock["left"] -= 44.0

    monkeypatch.setattr(demo, "remaining", lambda: clock["left"])
    monkeypatch.setattr(demo, "ner", fake_ner)
    demo.extra_seeds()
    assert ran == [("elmo", 1), ("tok2vec", 1)]  # seed 2 (12 s left) skipped as a pair
    assert [s["what"] for s in demo.results["skipped"]] == ["ner_elmo_10_s2", "ner_tok2vec_10_s2"]
    assert "seed 2's ELMo and tok2vec runs" in demo.results["skipped"][0]["why"]


def test_jobs_run_ner_side_by_side_longest_first(tmp_path, monkeypatch):
    """--jobs 2: a queue with two slots (never more at once), 100% runs first, the extra seeds after the main runs,
    each run's output prefixed with its name and each process given its share of the cores."""
    import threading
    import time

    module = _module()
    args = Namespace(tiny=True, deadline=0, pretrain_seconds=0, data=str(tmp_path), work=str(tmp_path / "w"),
                     out=str(tmp_path / "o"), device="cpu", seeds="0,1", ner_scale=1.0, jobs=2)
    demo = module.Demo(args)
    (demo.work / "elmo").mkdir(parents=True)
    (demo.work / "elmo" / "weights.hdf5").write_bytes(b"")
    (demo.work / "elmo" / "options.json").write_text('{"lstm": {"projection_dim": 16}}')
    lock, state, started, prefixes, envs = threading.Lock(), {"now": 0, "most": 0}, [], set(), []

    def fake_run(cmd, log, cap, env, prefix=""):
        cmd = [str(c) for c in cmd]
        if cmd[2:4] != ["spacy", "train"]:
            return 0, 0.0, False, ""
        with lock:
            started.append(Path(cmd[cmd.index("--output") + 1]).name)
            state["now"] += 1
            state["most"] = max(state["most"], state["now"])
        prefixes.add(prefix)
        envs.append(env)
        time.sleep(0.2)
        with lock:
            state["now"] -= 1
        return 0, 0.2, False, "  0     4   1.00   2.00   3.00"

    monkeypatch.setattr(module, "run_logged", fake_run)
    main_runs = [(f, fr, 0) for fr in module.FRACTIONS for f in ("elmo", "tok2vec")]
    demo.ner_side_by_side(main_runs)
    assert state["most"] == 2
    assert set(started[:2]) == {"ner_elmo_100", "ner_tok2vec_100"} and set(started[-2:]) == {"ner_elmo_10_s1", "ner_tok2vec_10_s1"}
    assert {r["name"] for r in demo.results["ner"]} == set(started) and len(started) == 6
    assert prefixes == {f"[{name}] " for name in started}
    threads = str(max(1, (os.cpu_count() or 1) // 2))
    assert all(env["OMP_NUM_THREADS"] == threads for env in envs)
