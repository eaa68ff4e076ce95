"""scripts/run.py's queue (train-all, evaluate-all) on small Python commands instead of trainings: two at a time
with their share of the cores, the next starting as soon as a slot is free, a failure named with its run and
command without cutting the others short, and Ctrl+C leaving no child running."""
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.scripts.test_prepare import SCRIPTS, load_script

run = load_script("run")
PY = sys.executable


def python(code: str, *args: str):
    return [PY, "-c", code, *args]


def test_a_failing_side_names_its_run_and_command_and_the_other_side_completes(tmp_path, capsys):
    done = tmp_path / "done.txt"
    slow = python("import os, sys, time; time.sleep(1.0); print('threads', os.environ['OMP_NUM_THREADS']); "
                  "open(sys.argv[1], 'w').write('done')", str(done))
    failing = python("import sys; print('boom'); sys.exit(3)")
    start = time.perf_counter()
    results = run.run_side_by_side([run.Job("ner_elmo_10_seed1", [slow]), run.Job("ner_tok2vec_10_seed1", [failing])], 2)
    assert time.perf_counter() - start >= 1.0  # the failure did not cut the other side short
    assert results["ner_elmo_10_seed1"].ok and done.read_text() == "done"
    failed = results["ner_tok2vec_10_seed1"]
    assert failed.returncode == 3 and failed.failed_command == failing
    out = capsys.readouterr().out
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert f"[ner_elmo_10_seed1] threads {max(1, cores // 2)}" in out  # each side gets half the cores
    assert "[ner_tok2vec_10_seed1] boom" in out and "[ner_tok2vec_10_seed1] failed with exit code 3" in out
    with pytest.raises(SystemExit) as error:
        run.require_success(results)
    message = str(error.value)
    assert "ner_tok2vec_10_seed1: exit code 3" in message and "sys.exit(3)" in message
    assert "ner_elmo_10_seed1" not in message


def test_one_at_a_time_a_failure_leaves_the_second_side_unstarted(tmp_path):
    """--jobs 1 (the default on a GPU): the second training is not run in vain after the first failed."""
    marker = tmp_path / "second-ran"
    results = run.run_side_by_side([run.Job("first", [python("raise SystemExit(2)")]),
                                    run.Job("second", [python("open(__import__('sys').argv[1], 'w')", str(marker))])], 1)
    assert results["first"].returncode == 2 and results["second"].returncode is None and not marker.exists()
    with pytest.raises(SystemExit, match="second: not started, because a run before it failed"):
        run.require_success(results)
    both = run.run_side_by_side([run.Job("first", [python("pass")]), run.Job("second", [python("pass")])], 1)
    run.require_success(both)  # all good: no exit


def test_a_command_that_cannot_start_is_a_named_failure(tmp_path):
    # "fine" is taken first, so it has started when "missing" fails, and runs to its end
    results = run.run_side_by_side([run.Job("fine", [python("pass")]), run.Job("missing", [[str(tmp_path / "no-such-program")]])], 2)
    assert results["missing"].returncode == 127 and results["fine"].ok
    with pytest.raises(SystemExit, match="missing: exit code 127"):
        run.require_success(results)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupt_terminates_both_sides(tmp_path, signum):
    """SIGINT (Ctrl+C) or SIGTERM (a scheduler) to the runner alone: it terminates both children, waits for them
    and exits with 130. The runner's script restores Python's Ctrl+C handler first: a test run as a background
    job inherits SIGINT ignored, as every process started from it would, where a terminal's Ctrl+C is not."""
    pids = [tmp_path / "a.pid", tmp_path / "b.pid"]
    sleeper = "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(60)"
    script = tmp_path / "pair.py"
    script.write_text(
        f"import signal, sys\nsignal.signal(signal.SIGINT, signal.default_int_handler)\n"
        f"sys.path.insert(0, {str(SCRIPTS)!r})\nimport run\n"
        f"jobs = [run.Job(name, [[sys.executable, '-c', {sleeper!r}, path]]) for name, path in "
        f"(('a', {str(pids[0])!r}), ('b', {str(pids[1])!r}))]\n"
        "run.run_side_by_side(jobs, 2)\n")
    parent = subprocess.Popen([PY, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not all(p.exists() and p.read_text() for p in pids):
        assert time.time() < deadline and parent.poll() is None, parent.communicate()
        time.sleep(0.1)
    children = [int(p.read_text()) for p in pids]
    parent.send_signal(signum)
    out, err = parent.communicate(timeout=60)
    assert parent.returncode == 130, out + err
    assert "Interrupted: terminated a, b" in err
    for pid in children:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_a_free_slot_takes_the_next_job_without_waiting_for_the_slower_one(tmp_path):
    """Not waves of two: while the first job runs, the three short ones run one after another in the other slot. The
    first job ends only once the last short one has written its file, so waves ([first, a], [b, c]) would never
    finish (the first job gives up after 60 s and fails)."""
    last = tmp_path / "c.txt"
    first = python("import sys, time, pathlib; p = pathlib.Path(sys.argv[1]); deadline = time.time() + 60\n"
                   "while not p.exists():\n    assert time.time() < deadline, 'ran in waves'\n    time.sleep(0.05)", str(last))
    shorts = [run.Job(name, [python("import sys; open(sys.argv[1], 'w')", str(tmp_path / f"{name}.txt"))]) for name in "abc"]
    results = run.run_side_by_side([run.Job("first", [first]), *shorts], 2)
    run.require_success(results)
    assert all((tmp_path / f"{name}.txt").exists() for name in "abc")


def test_the_queue_holds_every_run_longest_first_and_each_comparison_has_both_sides(monkeypatch):
    """train-all's order: every run of the size once, by the rule of expected_cost (ELMo ner on all the data first); seed 0's
    ELMo and tok2vec pipelines compare like the extra seeds' (same folders, no suffix), and a preset that lists an
    extra seed for one side only is an error before anything trains."""
    for size in ("ci", "demo", "full"):
        queue = run.longest_first(list(run.runs(size)), size)
        assert sorted(queue) == sorted(run.runs(size)) and len(set(queue)) == len(queue)
    demo = run.longest_first(list(run.runs("demo")), "demo")
    assert demo[0][:3] == ("ner", "elmo", "100") and demo[-1][:3] == ("sentiment", "stock", "10")
    assert ("ner", "10", 0) in run.comparisons("ci") and ("textcat", "100", 0) in run.comparisons("ci")
    assert not any(task == "sentiment" for task, _, _ in run.comparisons("ci"))  # ci's sentiment: tok2vec only
    assert [run.run_name("ner", f, "10") for f in run.COMPARED_FEATURES] == ["ner_elmo_10", "ner_tok2vec_10"]
    monkeypatch.setitem(run.preset("ci"), "sentiment_seeds", {"10": [0, 1], "100": []})
    with pytest.raises(SystemExit, match="sentiment 10 --seed 1 trains tok2vec; seeds other than 0 train both elmo and tok2vec"):
        run.comparisons("ci")


def elmo_weights(task: str, features: str, fraction: str, size: str, **kwargs) -> str:
    argv = run.train_commands(task, features, fraction, size, **kwargs)[-1]
    return argv[argv.index("--paths.elmo_weights") + 1] if "--paths.elmo_weights" in argv else ""


def test_each_run_reads_the_bilm_of_its_stage(monkeypatch):
    """demo: ner's ELMo side reads the biLM adapted to CoNLL-2003's training text, the runs before adaptation and
    textcat/sentiment the pretrained one, tok2vec none; ci (no adaptation) reads the pretrained biLM everywhere;
    --elmo DIR replaces the run's biLM."""
    assert elmo_weights("ner", "elmo", "10", "demo") == "training/demo/elmo_adapted"
    assert elmo_weights("ner", "elmo", "100", "demo", seed=2) == "training/demo/elmo_adapted"
    assert elmo_weights("ner", "unadapted", "10", "demo", seed=1) == "training/demo/elmo"
    assert elmo_weights("sentiment", "elmo", "10", "demo") == elmo_weights("textcat", "elmo", "100", "demo") == "training/demo/elmo"
    assert elmo_weights("ner", "tok2vec", "10", "demo") == ""
    assert elmo_weights("ner", "elmo", "10", "ci") == "training/ci/elmo"
    assert elmo_weights("ner", "elmo", "10", "demo", elmo="assets/elmo/original") == "assets/elmo/original"
    # train-all --elmo DIR: the pretrained biLM of every run that reads it; ner's ELMo side keeps the adapted one
    overrides = {r[:2]: run.pretrained_override("demo", r, "assets/elmo/original") for r in run.runs("demo")}
    assert overrides == {("ner", "elmo"): None, ("ner", "tok2vec"): None, ("ner", "stock"): None,
                         ("ner", "unadapted"): "assets/elmo/original", ("textcat", "elmo"): "assets/elmo/original",
                         ("textcat", "tok2vec"): None, ("sentiment", "elmo"): "assets/elmo/original",
                         ("sentiment", "tok2vec"): None, ("sentiment", "stock"): None}
    with pytest.raises(SystemExit, match="No pipeline ner unadapted 10"):
        run.train_commands("ner", "unadapted", "10", "ci")
    monkeypatch.setitem(run.preset("demo"), "ner_bilm", "adaptd")
    with pytest.raises(SystemExit, match="ner_bilm is 'adaptd'; choose 'adapted' or 'pretrained'"):
        run.train_commands("ner", "elmo", "10", "demo")
    monkeypatch.setitem(run.preset("ci"), "ner_bilm", "adapted")
    monkeypatch.setitem(run.preset("ci"), "adapt", None)
    with pytest.raises(SystemExit, match="Size ci: ner_bilm is 'adapted' but the size has no adaptation step"):
        run.train_commands("ner", "elmo", "10", "ci")


def test_the_queue_says_which_run_of_how_many_starts_and_how_long_is_left(capsys):
    """train-all's overall progress: a [queue] line as each run starts, with an estimate once one has ended."""
    assert run.queue_line(1, 4, "a", 0.0, [], 2) == "run 1 of 4: a (0s so far, ETA after the first run ends)"
    # two runs ended, 60 s each on average: two more on two slots is about a minute
    assert run.queue_line(3, 4, "c", 90.0, [40.0, 80.0], 2) == "run 3 of 4: c (1.5 min so far, about 1.0 min left)"
    jobs = [run.Job(name, [python("pass")]) for name in "abc"]
    run.require_success(run.run_side_by_side(jobs, 1))
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[queue]")]
    assert [line.split(":")[0] for line in lines] == ["[queue] run 1 of 3", "[queue] run 2 of 3", "[queue] run 3 of 3"]
    assert "ETA after the first run ends" in lines[0] and "left)" in lines[1] and "left)" in lines[2]
