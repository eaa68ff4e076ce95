"""bench/gpu_check.py must not rot between the rare runs on a lent GPU: CI runs it on CPU, the way a user does
(`make gpu-check`, which sources bench/gpu_env.sh), and checks that every step ran and recorded its numbers."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
STEPS = ["device", "parity", "throughput", "lstm_train", "spacy_train", "pretrain"]


def run_gpu_check(args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    # OUT and SPACY_ELMO_GPU_T0 belong to a GPU run (the output folder, the budget's start): not to this one
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("OUT", "SPACY_ELMO_GPU_T0")}
    if shutil.which("make"):
        cmd = ["make", "-s", "gpu-check", f"GPU_PY={sys.executable}", f"GPU_CHECK_ARGS={args}"]
    else:  # the make recipe, spelled out
        cmd = ["sh", "-c", f". bench/gpu_env.sh && $GPU_PY bench/gpu_check.py {args}"]
        env["GPU_PY"] = sys.executable
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_gpu_check_runs_every_step_on_cpu(tmp_path, bilm_tf_fixtures):
    out = tmp_path / "gpu_check.json"
    # a generous budget: on a slow CI machine a skipped step would fail this test for the wrong reason
    args = (f"--device cpu --quick --budget-seconds 900 --ner-data synthetic --fixtures {bilm_tf_fixtures} "
            f"--out {out} --work {tmp_path / 'work'}")
    proc = run_gpu_check(args, tmp_path)
    assert out.is_file(), proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text(encoding="utf8"))
    statuses = {name: step["status"] for name, step in report["steps"].items()}
    failures = {name: step.get("error") for name, step in report["steps"].items() if step["status"] != "ok"}
    assert statuses == {name: "ok" for name in STEPS}, (failures, proc.stdout[-3000:])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"{len(STEPS)} ok, 0 fail, 0 skipped" in proc.stdout  # the table at the end
    steps = {name: step["results"] for name, step in report["steps"].items()}
    assert set(steps["device"]["matmul_tflops"]) == {"fp32", "tf32", "bf16", "fp16"}
    parity = steps["parity"]
    assert parity["fixture_model"]["fp32"]["max_abs_diff"] <= 1e-4
    assert parity["bilm_tf_reference_max_abs_diff"] <= 1e-4
    assert len(parity["full_model"]["fp32"]["cosine_per_layer"]) == 3
    assert any("tokens_per_s" in row for row in steps["throughput"]["rows"])
    assert steps["lstm_train"]["fp32"]["worst"] <= 1e-4 and steps["lstm_train"]["forward_backward_ms"]["fp32_function_ms"] > 0
    assert steps["spacy_train"]["cpu_elmo_device"] == "cpu" and steps["spacy_train"]["evaluate_cpu"]["rc"] == 0
    pretrain = steps["pretrain"]
    assert pretrain["resume"]["step"] > pretrain["run"]["step"] and pretrain["torchrun"]["rc"] == 0
    assert (out.with_suffix(".log")).is_file()


def test_gpu_check_skips_what_does_not_fit_and_still_writes_its_json(tmp_path):
    out = tmp_path / "gpu_check.json"
    proc = run_gpu_check(f"--device cpu --budget-seconds 0.1 --out {out} --work {tmp_path / 'work'}", tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text(encoding="utf8"))
    assert [step["status"] for step in report["steps"].values()] == ["skipped"] * len(STEPS)
    assert all("budget" in step["reason"] for step in report["steps"].values())
    assert report["summary"] == {"ok": 0, "fail": 0, "skipped": len(STEPS)}
