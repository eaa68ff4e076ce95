"""project.yml through weasel's own CLI (`python -m spacy project ...`): one workflow, `all`, whose size is a var
(`--vars.size ci|demo|full`) and whose commands, named after the size, never share files with another size's;
deps that cover everything a step reads, skipping what is up to date, an edited config rerunning exactly its
dependants, assets and the generated section of docs/workflow.md.

The slow part, a real `spacy project run ci`, is `make ci-project` (CI runs it before the tests); the
tests below that need its results skip without them. Everything else runs on placeholders and tiny
inputs in a copy of the project, in well under a minute.
"""
import functools
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Set

import pytest
import srsly
from weasel.cli.run import check_rerun, get_lock_entry
from weasel.util import get_hash, load_project_config

from tests.scripts.test_prepare import CONLL_TRAIN

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import presets  # noqa: E402
import run as steps  # noqa: E402

SIZES = list(presets.PRESETS)
SHARED = {"check", "fetch", "wheel"}  # commands without a size in their names, files or folders
SAME_FOR_EVERY_SIZE = {"fetch", "wheel"}  # and of those, the ones whose command line is the same too (check takes --size)
ALWAYS = {"check"}  # weasel reruns a command without outputs every time: the requirements check before the first step
SIZED_ROOTS = ("corpus", "training", "metrics", "packages")
PROJECT_FILES = ["project.yml", "scripts", "configs", "setup.cfg", "pyproject.toml", "README.md", "spacy_elmo"]


def overrides(size: str) -> Dict[str, str]:
    return {"vars.size": size}


@functools.lru_cache(maxsize=None)
def _config(size: str) -> str:
    return srsly.json_dumps(load_project_config(ROOT, overrides=overrides(size)))


def config(size: str = "ci") -> dict:
    """project.yml as `spacy project run all . --vars.size SIZE` reads it."""
    return srsly.json_loads(_config(size))


def commands(size: str = "ci") -> Dict[str, dict]:
    return {cmd["name"]: cmd for cmd in config(size)["commands"]}


def workflow(size: str) -> List[str]:
    return config(size)["workflows"]["all"]


def spacy_project(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "spacy", "project", *args], capture_output=True, text=True, cwd=cwd)


def weasel(*args: str) -> subprocess.CompletedProcess:
    """The CLI `spacy project` hands over to, without spaCy's 2-3 s import (same lock file, same checks)."""
    return subprocess.run([sys.executable, "-m", "weasel", *args], capture_output=True, text=True, cwd=ROOT)


def covered(path: str, paths: List[str]) -> bool:
    return any(path == p or path.startswith(p.rstrip("/") + "/") for p in paths)


def size_of(path: str) -> str:
    """corpus/ci/... -> ci; '' for a path outside the per-size folders (configs, scripts, assets, ...)."""
    parts = path.split("/")
    return parts[1] if parts[0] in SIZED_ROOTS and len(parts) > 1 and parts[1] in SIZES else ""


def step_argvs(cmd: dict) -> List[List[str]]:
    """The argv lists scripts/run.py would run for a command of project.yml (built, not run)."""
    out = []
    for line in cmd["script"]:
        argv = shlex.split(line)
        if argv[:2] != ["python", "scripts/run.py"]:
            out.append(argv)
            continue
        step, rest = argv[2], argv[3:]
        opts = {rest[i]: rest[i + 1] for i in range(len(rest)) if rest[i].startswith("--") and i + 1 < len(rest)}
        pos = [a for i, a in enumerate(rest) if not a.startswith("--") and (i == 0 or not rest[i - 1].startswith("--"))]
        size, gpu = opts.get("--size"), int(opts.get("--gpu-id", -1))
        if step in ("check", "pretrain-config"):  # in-process: nothing run (pretrain-config's files: a test below)
            continue
        if step == "prepare":
            out += steps.prepare_commands(pos[0], size)
        elif step == "pretrain":
            out += steps.pretrain_commands(size, gpu)
        elif step == "adapt":
            out += steps.adapt_commands(size, opts.get("--elmo"), gpu)
        elif step == "train":
            out += steps.train_commands(*pos, size, gpu, elmo=opts.get("--elmo"), seed=int(opts.get("--seed", 0)))
        elif step == "evaluate":
            out += steps.evaluate_commands(*pos, size, gpu, seed=int(opts.get("--seed", 0)))
        elif step == "train-all":
            out += [argv for argvs in steps.train_all_commands(size, gpu, opts.get("--elmo")).values() for argv in argvs]
        elif step == "evaluate-all":
            out += [argv for argvs in steps.evaluate_all_commands(size, gpu).values() for argv in argvs]
        elif step == "package":
            out += steps.package_commands(size, opts["--name"], opts["--version"])
        elif step == "wheel":
            out += steps.wheel_commands()
        else:
            raise AssertionError(f"{cmd['name']}: unknown step {step}")
    return out


def path_args(argvs: List[List[str]]) -> Set[str]:
    found = set()
    for argv in argvs:
        for arg in argv:
            if re.match(r"^(assets|corpus|training|metrics|packages|configs|scripts)/", arg):
                found.add(arg.rstrip("/"))
    return found


def test_one_workflow_per_size_and_no_shared_files():
    """One workflow whose commands are written once: each size's are the same list, named after the size."""
    first = [name.replace("-ci", "-SIZE") for name in workflow("ci")]
    for size in SIZES:
        cfg, cmds, names = config(size), commands(size), workflow(size)
        assert list(cfg["workflows"]) == ["all"]
        assert [name.replace(f"-{size}", "-SIZE") for name in names] == first
        assert names[:2] == ["check", "fetch"] and names[-1] == f"package-{size}"
        for name in names:
            cmd = cmds[name]
            if name in SHARED:
                assert not any(size_of(p) for p in cmd.get("deps", []) + cmd.get("outputs", [])), name
                continue
            assert name.endswith(f"-{size}"), name
            assert all(f"--size {size}" in line for line in cmd["script"]), name
            # Everything it writes lies in its own size's folders; everything sized that it reads too.
            assert cmd["outputs"] and all(size_of(p) == size for p in cmd["outputs"]), name
            assert all(size_of(p) in ("", size) for p in cmd["deps"]), name
        # No output path is declared twice, or inside another, so no command's output can stand in for another's.
        outputs = [p for cmd in cmds.values() for p in cmd.get("outputs", [])]
        assert len(outputs) == len(set(outputs))
        assert not [(a, b) for a in outputs for b in outputs if a != b and covered(a, [b])]


def test_every_workflow_dep_is_a_source_file_or_an_earlier_output():
    for size in SIZES:
        cmds, names = commands(size), workflow(size)
        made: List[str] = []
        for name in names:
            for dep in cmds[name]["deps"]:
                assert covered(dep, made) or (ROOT / dep).exists() and not dep.startswith(SIZED_ROOTS), (name, dep)
            made += cmds[name].get("outputs", [])


def test_deps_and_outputs_cover_what_each_step_reads_and_writes():
    """Every path in the argv that scripts/run.py builds (configs, corpora, weights, output folders) and every
    script it runs is a declared dep or output; run.py and presets.py themselves are deps of their steps."""
    for size in SIZES:
        check_deps_and_outputs(size)
    cmds = commands()
    assert {"setup.cfg", "pyproject.toml", "README.md", "LICENSE"} <= set(cmds["wheel"]["deps"])  # what the build reads
    tracked = subprocess.run(["git", "ls-files", "spacy_elmo"], capture_output=True, text=True, cwd=ROOT).stdout.split()
    if tracked:  # the wheel is built from every tracked file of the package
        assert set(tracked) <= set(cmds["wheel"]["deps"])


def check_deps_and_outputs(size: str) -> None:
    cmds = commands(size)
    # pretrain-config copies the table's pretraining config (in-process) to where pretrain reads it
    copy = cmds[f"pretrain-config-{size}"]
    assert steps.preset(size)["pretrain_config"] in copy["deps"] and copy["outputs"] == [steps.pretrain_config(size)]
    for name, cmd in cmds.items():
        declared = cmd.get("deps", []) + cmd.get("outputs", [])
        argvs = step_argvs(cmd)
        for path in path_args(argvs):
            # a file or folder declared as such or inside a declared folder, or a folder whose files are declared
            assert covered(path, declared) or any(covered(d, [path]) for d in declared), (name, path)
        for line in cmd["script"]:
            script = shlex.split(line)[1]
            assert script in cmd["deps"], (name, script)
            if script == "scripts/run.py" and name != "wheel":
                assert "scripts/presets.py" in cmd["deps"], name
        if name.startswith("report-"):
            for run in steps.runs(size):
                assert covered(steps.metrics_file(size, *run), cmd["deps"]), (name, run)


def test_each_size_trains_and_evaluates_every_pipeline_in_one_queue_command():
    """train-all-SIZE writes every pipeline the size trains (both sides of each comparison, every seed, the stock and
    the unadapted ner) and reads every config, training set and biLM they need; evaluate-all-SIZE writes each one's
    metrics from its model-best and train_summary.json."""
    for size in SIZES:
        cmds, names = commands(size), workflow(size)
        trained = list(steps.runs(size))
        train, evaluate = cmds[f"train-all-{size}"], cmds[f"evaluate-all-{size}"]
        assert names.index(train["name"]) + 1 == names.index(evaluate["name"]) < names.index(f"report-{size}")
        assert not [name for name in names if name.startswith(("train-", "evaluate-")) and not name.endswith(f"all-{size}")]
        # one folder each, whatever the size trains: every pipeline in it, every pipeline's scores in the other
        assert train["outputs"] == [steps.pipelines_dir(size)] and evaluate["outputs"] == [steps.scores_dir(size)]
        assert all(covered(steps.pipeline_dir(size, *run), train["outputs"]) for run in trained)
        assert all(covered(steps.metrics_file(size, *run), evaluate["outputs"]) for run in trained)
        for run in trained:
            if run[1] != "stock":  # the stock config is written by `spacy init config` into the training's folder
                assert steps.train_config(size, *run) in train["deps"]
            # the test scores and the training's steps (train_summary.json) go into one metrics file
            assert covered(f"{steps.pipeline_dir(size, *run)}/model-best", evaluate["deps"])
            assert covered(steps.train_summary_file(size, *run), evaluate["deps"])
        assert steps.pretrain_config(size) in cmds[f"pretrain-{size}"]["deps"]
    # the small sentiment training set has three seeds at demo size, ner every fraction (their mean is the score)
    assert steps.preset("demo")["sentiment_seeds"]["10"] == [0, 1, 2]
    assert all(seeds == [0, 1, 2] for seeds in steps.preset("demo")["ner_seeds"].values())
    assert steps.preset("demo")["unadapted_seeds"] == {"10": [0, 1, 2]}  # the stage comparison is a mean of 3 seeds too
    # ci trains one extra seed and its tok2vec-only sentiment through the same queue (`spacy project run ci`)
    assert {("ner", "elmo", "10", 1), ("ner", "tok2vec", "10", 1), ("sentiment", "tok2vec", "10", 0)} <= set(steps.runs("ci"))
    assert {"ner 10", "ner 25", "ner 100", "textcat 100", "sentiment 10", "sentiment 100"} == {
        f"{t} {f}" for t, f, s in steps.comparisons("demo") if s == 0}


def test_every_training_stops_on_patience_with_a_cap_and_logs_its_evaluations():
    """ELMo and tok2vec alike: the same [training] patience / eval_frequency / max_steps per task and size, and the
    JSONL evaluation log that train_summary reads."""
    for size in SIZES:
        by_task: Dict[str, Set[str]] = {}
        for run in steps.runs(size):
            argv = steps.train_commands(*run[:3], size, seed=run[3])[-1]
            settings = steps.read_config_training(steps.train_config(size, *run), argv) if run[1] != "stock" else None
            if settings is not None:
                assert settings["patience"] > 0 and settings["max_steps"] >= settings["patience"] >= settings["eval_frequency"], (size, run)
                by_task.setdefault(run[0], set()).add(json.dumps(settings))
            assert argv[argv.index("--training.logger.output_file") + 1] == steps.train_log(size, *run)
        assert all(len(found) == 1 for found in by_task.values()), (size, by_task)


def test_a_wrong_size_or_pipeline_is_a_clear_error():
    def run_py(*args):
        return subprocess.run([sys.executable, "scripts/run.py", *args], capture_output=True, text=True, cwd=ROOT)

    bad = run_py("train", "ner", "elmo", "10", "--size", "small")
    assert bad.returncode != 0 and "Unknown size preset 'small'; choose one of ci, demo, full" in bad.stderr
    bad = run_py("evaluate", "textcat", "elmo", "10", "--size", "ci")
    assert bad.returncode != 0 and "No pipeline textcat elmo 10" in bad.stderr
    bad = run_py("train", "sentiment", "elmo", "10", "--seed", "2", "--size", "ci")  # ci trains seed 0 only
    assert bad.returncode != 0 and "No pipeline sentiment elmo 10 --seed 2 in size ci" in bad.stderr
    bad = spacy_project("run", "small", ".")
    assert bad.returncode != 0 and "Available workflows: all" in " ".join(bad.stdout.split())
    # a wrong size stops at the workflow's first step, before anything is fetched or written
    bad = weasel("run", "check", ".", "--vars.size", "small")
    assert bad.returncode != 0 and "Unknown size preset 'small'; choose one of ci, demo, full" in bad.stderr + bad.stdout


# --- weasel's skip behaviour, through `spacy project run` in a copy of the project --------------------------


def copy_project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    for name in PROJECT_FILES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, project / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy(src, project / name)
    return project


def sections(output: str) -> Dict[str, str]:
    """`spacy project run` output -> {command name: 'skip' | 'run'} (weasel prints a divider per command)."""
    found, name, known = {}, None, {name for size in SIZES for name in commands(size)}
    for line in output.splitlines():
        m = re.search(r"=+ (\S+) =+", line)
        if m and m.group(1) in known:  # not spaCy's own dividers ("Results", ...)
            name = m.group(1)
        elif name and "Skipping" in line:
            found[name] = "skip"
        elif name and "Running command:" in line:
            found[name] = "run"
    return found


def fake_outputs(project: Path, names: List[str], tag: str, size: str = "ci") -> None:
    """Stand-ins for what the named commands write, as if they had run (content depends on tag)."""
    cmds = commands(size)
    for name in names:
        for out in cmds[name].get("outputs", []):
            path = project / out
            if out == steps.pipelines_dir(size):  # every pipeline, as the commands after train-all read them
                for run in steps.runs(size):
                    best = project / steps.pipeline_dir(size, *run) / "model-best"
                    best.mkdir(parents=True, exist_ok=True)
                    (best / "placeholder").write_text(f"{out} {tag}\n")
                    (project / steps.train_summary_file(size, *run)).write_text(f"{tag}\n")
            elif out == steps.scores_dir(size):
                path.mkdir(parents=True, exist_ok=True)
                for run in steps.runs(size):
                    (project / steps.metrics_file(size, *run)).write_text(f"{tag}\n")
            elif Path(out).suffix:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(f"{out} {tag}\n")
            else:
                path.mkdir(parents=True, exist_ok=True)
                (path / "model-best").mkdir(exist_ok=True)
                (path / "model-best" / "placeholder").write_text(f"{out} {tag}\n")
                (path / "options.json").write_text(f"{tag}\n")
                (path / "weights.hdf5").write_text(f"{tag}\n")


def mark_done(project: Path, names: List[str], size: str = "ci") -> None:
    """Record the commands in project.lock as weasel's update_lockfile does after running one (its
    get_lock_entry; one write for all of them instead of a YAML read and write each)."""
    cmds = {cmd["name"]: cmd for cmd in load_project_config(project, overrides=overrides(size))["commands"]}
    lock_path = project / "project.lock"
    lock = srsly.read_yaml(lock_path) if lock_path.exists() else {}
    lock.update({name: get_lock_entry(project, cmds[name]) for name in names})
    srsly.write_yaml(lock_path, lock)


def would_run(project: Path, size: str) -> Set[str]:
    """The commands of the workflow that `spacy project run all . --vars.size SIZE` would rerun now: weasel's
    check_rerun (a command without a lock entry, or whose entry differs from get_lock_entry now), with
    project.lock read once. In-process for the intermediate states; the CLI checks the first and last ones."""
    cfg = load_project_config(project, overrides=overrides(size))
    cmds = {cmd["name"]: cmd for cmd in cfg["commands"]}
    lock = srsly.read_yaml(project / "project.lock")
    return {name for name in cfg["workflows"]["all"] if name not in lock or not lock[name].get("outs")
            or get_hash(get_lock_entry(project, cmds[name])) != get_hash(lock[name])}


def dry_run(project: Path, workflow: str, size: str = "ci") -> Dict[str, str]:
    """{command: 'run' | 'skip'} from `run WORKFLOW_OR_COMMAND --dry` (weasel's CLI: checks, runs nothing)."""
    result = weasel("run", workflow, str(project), "--dry", "--vars.size", size)
    assert result.returncode == 0, result.stdout + result.stderr
    return sections(result.stdout)


def test_edited_config_reruns_exactly_its_dependants_and_a_failed_step_reruns_alone(tmp_path):
    project = copy_project(tmp_path)
    ci = workflow("ci")
    fake_outputs(project, ci, "first")
    mark_done(project, ci)
    assert dry_run(project, "all") == {name: "run" if name in ALWAYS else "skip" for name in ci}
    cmds = {cmd["name"]: cmd for cmd in load_project_config(project, overrides=overrides("ci"))["commands"]}
    assert [name for name in ci if check_rerun(project, cmds[name])] == sorted(ALWAYS) == sorted(would_run(project, "ci"))

    # The demo's commands are not satisfied by the ci's files: all but the size-independent ones would run.
    assert would_run(project, "demo") == set(workflow("demo")) - SAME_FOR_EVERY_SIZE
    # and the demo's run leaves the ci's lock entries as they are: back at ci, nothing reruns
    demo = workflow("demo")
    fake_outputs(project, demo, "first", "demo")
    mark_done(project, demo, "demo")
    assert would_run(project, "demo") == ALWAYS == would_run(project, "ci")

    # An edit to the ner ELMo config: the trainings (one command), then (once they have produced new models) their
    # evaluations and the package, then the report; nothing else (the data and the biLM stay up to date).
    with (project / "configs" / "ner_elmo.cfg").open("a") as file:
        file.write("\n# edited\n")
    waves = [{"train-all-ci"}, {"evaluate-all-ci", "package-ci"}, {"report-ci"}, set()]
    for name, state in (("train-all-ci", "run"), ("pretrain-ci", "skip")):  # as the CLI sees it
        assert dry_run(project, name) == {name: state}
    for wave in waves:
        assert would_run(project, "ci") == wave | ALWAYS
        fake_outputs(project, sorted(wave), "second")
        mark_done(project, sorted(wave))

    # A command that failed never reached update_lockfile: only it runs again.
    lock = srsly.read_yaml(project / "project.lock")
    del lock["evaluate-all-ci"]
    srsly.write_yaml(project / "project.lock", lock)
    assert would_run(project, "ci") == {"evaluate-all-ci"} | ALWAYS
    mark_done(project, ["evaluate-all-ci"])

    # Only the content counts: a touched but unchanged preset file reruns nothing.
    (project / "scripts" / "presets.py").touch()
    assert would_run(project, "ci") == ALWAYS

    # An edit to another size's pretraining config: ci's copy step reruns and writes the same file; nothing follows.
    with (project / "configs" / "pretrain_full.cfg").open("a") as file:
        file.write("\n# edited\n")
    assert would_run(project, "ci") == {"pretrain-config-ci"} | ALWAYS
    mark_done(project, ["pretrain-config-ci"])
    assert would_run(project, "ci") == ALWAYS


# the first document of the prepare tests' CoNLL sample
CONLL = "-DOCSTART-" + CONLL_TRAIN.split("-DOCSTART-")[1]


def test_a_real_step_runs_once_then_skips_until_its_input_changes(tmp_path):
    """prepare-conll-ci for real (tiny CoNLL files in place of the fetched ones): run, skip, rerun on a change."""
    project = copy_project(tmp_path)
    conll = project / "assets" / "conll2003"
    conll.mkdir(parents=True)
    for name in ("train.txt", "valid.txt", "test.txt"):
        (conll / name).write_text(CONLL * 10)
    first = spacy_project("run", "prepare-conll-ci", str(project), "--vars.size", "ci")
    assert first.returncode == 0, first.stdout + first.stderr
    assert sections(first.stdout) == {"prepare-conll-ci": "run"}
    assert all((project / out).is_file() for out in commands()["prepare-conll-ci"]["outputs"])
    second = weasel("run", "prepare-conll-ci", str(project), "--vars.size", "ci")
    assert "Skipping 'prepare-conll-ci': nothing changed" in second.stdout, second.stdout + second.stderr
    (conll / "test.txt").write_text(CONLL * 11)
    third = weasel("run", "prepare-conll-ci", str(project), "--vars.size", "ci")
    assert third.returncode == 0 and sections(third.stdout) == {"prepare-conll-ci": "run"}


# --- the results of `make ci-project` in this checkout (CI runs it before the tests) -------------------------


def ci_run_done() -> bool:
    lock = ROOT / "project.lock"
    return lock.exists() and set(workflow("ci")) <= set(srsly.read_yaml(lock) or {})


@pytest.mark.skipif(not ci_run_done(), reason="needs `make ci-project` (spacy project run ci) in this checkout")
def test_after_the_ci_run_every_step_is_up_to_date_and_ci_sized():
    result = weasel("run", "all", ".", "--dry", "--vars.size", "ci")
    assert result.returncode == 0, result.stdout
    assert sections(result.stdout) == {name: "run" if name in ALWAYS else "skip" for name in workflow("ci")}, result.stdout
    assert "Size preset `ci`" in (ROOT / "metrics" / "ci" / "results.md").read_text()
    cmds = commands()
    for name in workflow("ci"):  # every output the ci workflow declares was written
        for out in cmds[name].get("outputs", []):
            assert (ROOT / out).exists(), out
    # the ci slices: 400 CoNLL training sentences, not the full 14,041
    from spacy.tokens import DocBin

    assert len(DocBin().from_disk(ROOT / "corpus" / "ci" / "conll2003" / "train.spacy")) == 400


@pytest.mark.skipif(not (ROOT / "assets" / "checksums.json").exists(), reason="needs the fetched data (spacy project run fetch)")
def test_spacy_project_assets_confirms_every_fetched_file():
    result = spacy_project("assets", ".")
    assert result.returncode == 0, result.stdout + result.stderr
    data = [a for a in config()["assets"] if not a.get("extra")]
    assert result.stdout.count("Asset exists with matching checksum") == len(data) == 10, result.stdout


def test_extra_assets_are_the_published_weights_with_where_they_go():
    extra = [a for a in config()["assets"] if a.get("extra")]
    assert {a["dest"] for a in extra} == {f"assets/elmo/{m}/{f}" for m in ("small", "medium", "original", "5.5B")
                                          for f in ("options.json", "weights.hdf5")}
    for asset in extra:
        name = Path(asset["url"]).name
        assert name.endswith("_" + Path(asset["dest"]).name) and asset["url"].startswith("https://"), asset


def test_workflow_docs_project_section_is_what_spacy_project_document_writes(tmp_path):
    """As `make project-docs` writes it into docs/workflow.md: from project.yml alone (weasel links local assets
    only where they exist)."""
    page = tmp_path / "workflow.md"
    shutil.copy(ROOT / "docs" / "workflow.md", page)
    (tmp_path / "project").mkdir()
    shutil.copy(ROOT / "project.yml", tmp_path / "project" / "project.yml")
    result = spacy_project("document", str(tmp_path / "project"), "--output", str(page))
    assert result.returncode == 0, result.stdout + result.stderr
    assert page.read_text() == (ROOT / "docs" / "workflow.md").read_text(), "run `make project-docs` and commit docs/workflow.md"
