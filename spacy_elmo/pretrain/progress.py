"""What a run tells as it goes (rank 0 only): lines on stdout, rows in DIR/log.jsonl, DIR/metrics.json, and
the progress line with its rate and time left.

Nothing is written into the output folder before the run has checked everything it can: log rows wait in
memory until open_log()."""
import json
import math
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from ..bilm.atomic import atomic_write
from .config import Settings
from .schedule import budget_progress
from .state import TrainingState


def format_time(seconds: float) -> str:
    seconds = int(max(0, seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


class Progress:
    def __init__(self, output: Path, is_main: bool, stdout: Callable[[str], None] = print) -> None:
        self.output, self.is_main, self._print = output, is_main, stdout
        self._rows: Optional[List[Dict[str, Any]]] = []  # log rows before open_log(); None after
        self._t_start = 0.0  # time.time() minus the training time of earlier runs of this output
        self._first = {"step": 0, "tokens": 0, "time": 0.0}  # where this process started (for the eta)
        self._window = {"time": 0.0, "tokens": 0, "loss_sum": 0.0, "loss_n": 0}  # since the last progress line

    # ---- lines and log rows ----
    def say(self, text: str) -> None:
        if self.is_main:
            self._print(text)
            sys.stdout.flush()

    def log(self, event: str, **fields: Any) -> None:
        if not self.is_main:
            return
        row = {"event": event, "time": round(time.time(), 3), **fields}
        if self._rows is not None:
            self._rows.append(row)
            return
        with (self.output / "log.jsonl").open("a", encoding="utf8") as fout:
            fout.write(json.dumps(row) + "\n")

    def open_log(self, fresh: bool) -> None:
        """From now on rows go to DIR/log.jsonl (a fresh run's replaces an old one); the waiting rows first."""
        rows, self._rows = self._rows or [], None
        if not self.is_main:
            return
        if fresh:
            (self.output / "log.jsonl").unlink(missing_ok=True)
        for row in rows:
            self.log(row.pop("event"), **row)

    def write_metrics(self, state: TrainingState, final: Optional[Dict[str, Any]] = None) -> None:
        if not self.is_main:
            return
        metrics = {
            "step": state.step,
            "epoch": state.epoch,
            "train_tokens": state.tokens,
            "wall_seconds": round(state.elapsed, 2),
            "tokens_per_second": round(state.tokens / max(state.elapsed, 1e-9), 1),
            "dev": state.history[-1] if state.history else None,
            "best_dev": state.best,
            "history": state.history,
            **state.extra_metrics,
            **(final or {}),
        }
        text = json.dumps(metrics, indent=2)
        atomic_write(self.output / "metrics.json", lambda tmp: Path(tmp).write_text(text, encoding="utf8"))

    # ---- the clock and the progress line ----
    def start_clock(self, state: TrainingState) -> None:
        """Training time counts on from the checkpoint's; rates and the eta count this process's steps."""
        now = time.time()
        self._t_start = now - state.elapsed
        self._first = {"step": state.step, "tokens": state.tokens, "time": now}
        self._window["time"] = now

    def elapsed(self) -> float:
        return time.time() - self._t_start

    def count_step(self, mean_loss: float, tokens: int) -> None:
        w = self._window
        w["loss_sum"] += mean_loss
        w["loss_n"] += 1
        w["tokens"] += tokens

    def step_line(self, state: TrainingState, settings: Settings, grad_norm: float) -> None:
        """The progress line and a "train" log row for the steps since the last one."""
        w, T = self._window, settings.training
        now = time.time()
        tps = w["tokens"] / max(now - w["time"], 1e-9)
        loss = w["loss_sum"] / max(w["loss_n"], 1)
        step, elapsed = state.step, state.elapsed
        parts = [f"step {step:>6}" + (f"/{T.max_steps}" if T.max_steps else "")]
        if T.max_steps or T.max_tokens or T.max_seconds:
            frac = max(budget_progress(T.max_steps, T.max_tokens, step, state.tokens) or 0.0,
                       min(1.0, elapsed / T.max_seconds) if T.max_seconds else 0.0)
            parts.append(f"[{'#' * int(20 * frac):<20}] {frac:4.0%}")
        label = "loss (sampled)" if settings.softmax.type == "sampled" else "loss"
        parts.append(f"{label} {loss:.3f}  ppl {math.exp(min(loss, 50.0)):.1f}")
        if T.lr_schedule != "constant" or T.warmup_steps:
            parts.append(f"lr {state.learning_rate:.2e}")
        parts.append(f"{tps:,.0f} tok/s")
        parts.append(f"elapsed {format_time(elapsed)}")
        # time left by each limit, at this process's own rate (earlier runs of a resumed output excluded)
        spent, remaining = now - self._first["time"], []
        for limit, done, first in ((T.max_steps, step, self._first["step"]), (T.max_tokens, state.tokens, self._first["tokens"])):
            if limit and done > first:
                remaining.append(spent / (done - first) * max(0, limit - done))
        if T.max_seconds:
            remaining.append(T.max_seconds - elapsed)
        if remaining:
            parts.append(f"eta {format_time(min(remaining))}")
        self.say("  ".join(parts))
        self.log("train", step=step, epoch=state.epoch, loss=loss, perplexity=math.exp(min(loss, 50.0)),
                 tokens_per_second=tps, grad_norm=grad_norm, tokens=state.tokens, elapsed=elapsed,
                 learning_rate=state.learning_rate)
        self._window = {"time": now, "tokens": 0, "loss_sum": 0.0, "loss_n": 0}


__all__ = ["Progress", "format_time"]
