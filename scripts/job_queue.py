"""The queue scripts/run.py's train-all and evaluate-all run their pipelines in: jobs of one or more commands,
`parallel` at a time, each in its own process with its share of the cores, every output line prefixed with its
job's name, a `[queue]` line with the overall progress as each job starts, and Ctrl+C or SIGTERM leaving no child
running."""
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional


@dataclass
class Job:
    """One run's commands, executed one after another; `name` (the run's name) prefixes every line they print."""
    name: str
    commands: List[List[str]]


@dataclass
class JobResult:
    seconds: float = 0.0
    returncode: Optional[int] = None  # None: never started, because a job before it failed
    failed_command: Optional[List[str]] = None

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def job_env(side_by_side: int) -> Dict[str, str]:
    """The environment of a job that runs beside `side_by_side - 1` others: its share of the cores for torch's and
    BLAS's thread pools (each would otherwise start one thread per core, and two jobs would fight over every core),
    and unbuffered Python output, so that its lines arrive as they are printed and not in blocks at the end."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    threads = str(max(1, cores // side_by_side))
    return {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads,
            "PYTHONUNBUFFERED": "1"}


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f}s"


def queue_line(started: int, total: int, name: str, elapsed: float, finished: List[float], slots: int) -> str:
    """The queue's overall progress as a run starts: which run of how many, and the time left estimated as the mean
    wall time of the runs that ended times the runs not ended yet, shared by the slots (none ended yet: no
    estimate). The longest runs go first, so the estimate errs long."""
    if finished:
        left = sum(finished) / len(finished) * (total - len(finished)) / slots
        eta = f"about {minutes(left)} left"
    else:
        eta = "ETA after the first run ends"
    return f"run {started} of {total}: {name} ({minutes(elapsed)} so far, {eta})"


def run_side_by_side(jobs: List[Job], parallel: int = 2) -> Dict[str, JobResult]:
    """Run the jobs in their order as a queue with `parallel` slots: whenever a job ends, the next one starts in its
    slot (no slot waits for a slower job beside it). Each line of their output is prefixed with [job name]; each
    job's result is returned (caller decides: require_success). A job that fails does not stop the ones running
    beside it: they run to their end, so their output and folders are whole and their results are reported too; but
    no job starts after a failure (nothing is trained in vain after it). Ctrl+C or SIGTERM terminates the
    running commands, waits for them and exits with 130, so no training is left running in the background."""
    if parallel < 1:
        raise SystemExit(f"--jobs must be at least 1, not {parallel}.")
    results = {job.name: JobResult() for job in jobs}
    lock = threading.Lock()  # one line at a time on stdout, and `running` read and written under it
    running: Dict[str, subprocess.Popen] = {}
    interrupted = threading.Event()

    def say(name: str, line: str) -> None:
        with lock:
            print(f"[{name}] {line.rstrip()}", flush=True)

    def work(job: Job, env: Dict[str, str]) -> None:
        result, start = results[job.name], time.perf_counter()
        for args in job.commands:
            say(job.name, f"$ {shlex.join(args)}")
            with lock:  # never start a command once the interrupt has collected what to terminate
                if interrupted.is_set():
                    return
                try:
                    proc = running[job.name] = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                                                env=env, text=True, errors="replace")
                except OSError as error:  # no such program: a failed run like any other, not a dead thread
                    result.returncode, result.failed_command = 127, args
                    print(f"[{job.name}] cannot start: {error}", flush=True)
                    return
            assert proc.stdout is not None
            for line in proc.stdout:
                say(job.name, line)
            returncode = proc.wait()
            with lock:
                running.pop(job.name, None)
            result.seconds = time.perf_counter() - start
            if returncode != 0:
                result.returncode, result.failed_command = returncode, args
                say(job.name, f"failed with exit code {returncode} after {result.seconds:.0f}s")
                return
        result.returncode = 0
        say(job.name, f"done ({result.seconds:.0f}s)")

    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if in_main_thread else None
    pending = list(jobs)  # taken from the front by whichever slot is free
    slots = min(parallel, len(jobs))
    env = job_env(max(1, slots))

    queue_start = time.perf_counter()
    finished: List[float] = []  # the wall time of each run that ended

    def slot() -> None:
        while True:
            with lock:
                failed = any(r.returncode not in (None, 0) for r in results.values())
                if not pending or failed or interrupted.is_set():
                    return
                job = pending.pop(0)
                line = queue_line(len(jobs) - len(pending), len(jobs), job.name, time.perf_counter() - queue_start,
                                  finished, slots)
                print(f"[queue] {line}", flush=True)
            work(job, env)
            with lock:
                finished.append(results[job.name].seconds)

    try:
        threads = [threading.Thread(target=slot, daemon=True) for _ in range(slots)]
        for thread in threads:
            thread.start()
        while any(thread.is_alive() for thread in threads):
            for thread in threads:
                thread.join(0.2)
    except KeyboardInterrupt:
        with lock:
            interrupted.set()
            procs = dict(running)
        for proc in procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        print(f"\nInterrupted: terminated {', '.join(procs) or 'nothing'}", file=sys.stderr, flush=True)
        raise SystemExit(130)
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
    return results


def require_success(results: Dict[str, JobResult]) -> None:
    """Exit non-zero naming each failed run and its command (their own output above says why), as `sh` does."""
    failed = []
    for name, result in results.items():
        if result.returncode is None:
            failed.append(f"{name}: not started, because a run before it failed")
        elif result.returncode != 0:
            failed.append(f"{name}: exit code {result.returncode} after {result.seconds:.0f}s: "
                          f"{shlex.join(result.failed_command or [])}")
    if failed:
        raise SystemExit("Failed:\n  " + "\n  ".join(failed))
