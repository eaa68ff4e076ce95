"""The GPU demo is the project's workflow at size gpu (scripts/presets.py): `make gpu-demo-data` runs its steps that
need the network here, `make gpu-demo` the rest on a GPU machine without a registry, each the workflow's own
command. The commands themselves run end to end in `make ci-project` (the same code at size ci)."""
import re
from pathlib import Path
from typing import List

from tests.test_project import ROOT, SIZED_ROOTS, commands, covered, steps, workflow


def make_list(name: str) -> List[str]:
    match = re.search(rf"^{name} := (.*)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert match, name
    return match.group(1).split()


def test_the_gpu_demo_is_the_workflow_at_size_gpu_split_where_the_network_ends():
    names, cmds = workflow("gpu"), commands("gpu")
    data, run = make_list("GPU_DEMO_DATA"), make_list("GPU_DEMO_RUN")
    # every step but the requirements check and the packaging, each once and in the workflow's order
    assert sorted(data + run) == sorted(set(names) - {"check", "wheel", "package-gpu"})
    assert data == [name for name in names if name in data] and run == [name for name in names if name in run]
    assert "fetch" in data  # the only step that needs the network
    # what the data steps write lies in the folders carried to the GPU machine (besides fetch's assets)
    carried = ["corpus/gpu", "training/gpu"]
    made = [out for name in data if name != "fetch" for out in cmds[name]["outputs"]]
    assert all(covered(out, carried) for out in made)
    # and the GPU machine's steps read only those, the repository's own files, or what an earlier one wrote
    for name in run:
        for dep in cmds[name]["deps"]:
            assert covered(dep, made) or (ROOT / dep).exists() and not dep.startswith(SIZED_ROOTS), (name, dep)
        made += cmds[name]["outputs"]
    assert "--vars.gpu_id 0" in (ROOT / "Makefile").read_text().split("gpu-demo:")[1]


def test_the_gpu_size_pretrains_on_the_gpu_config_then_compares_ner_at_two_fractions():
    assert steps.preset("gpu")["pretrain_config"] == "configs/pretrain_gpu.cfg"
    assert set(steps.runs("gpu")) == {("ner", f, fraction, 0) for f in ("elmo", "tok2vec") for fraction in ("10", "100")}
    # on a GPU every training and evaluation runs on it, one at a time
    argvs = [argv for commands in steps.train_all_commands("gpu", 0).values() for argv in commands]
    argvs += steps.pretrain_commands("gpu", 0) + [argv for c in steps.evaluate_all_commands("gpu", 0).values() for argv in c]
    assert all(argv[-2:] == ["--gpu-id", "0"] for argv in argvs)
    assert steps.parallel_jobs(None, 0) == 1
    # ELMo and tok2vec get the same step budget
    budgets = {steps.read_config_training(steps.train_config("gpu", *run), steps.train_commands(*run[:3], "gpu")[-1])["max_steps"]
               for run in steps.runs("gpu")}
    assert budgets == {150}
