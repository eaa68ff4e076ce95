"""The learning rate of each pretraining step: training.lr_schedule over the run's budget.

A budget-bounded run (max_steps or max_tokens) knows where it will end, so the rate can warm up over the
first `warmup_steps` and then decay to `final_lr_fraction` of its peak at the end of the budget, the usual
recipe for a language model trained once through a fixed budget. The rate is a pure function of the step
and of the tokens seen (both in the checkpoint), so a resumed run continues on exactly the same curve.
"""
import math
from typing import Optional

from .config import SCHEDULES, TrainingSettings


def budget_progress(max_steps: int, max_tokens: int, step: int, tokens: int) -> Optional[float]:
    """How much of the budget is spent, 0 to 1: the larger of the step and token fractions (the limit that
    stops the run first); None for a run bounded by neither (epochs or the wall clock)."""
    fractions = [done / limit for limit, done in ((max_steps, step), (max_tokens, tokens)) if limit]
    return min(1.0, max(fractions)) if fractions else None


def learning_rate(T: TrainingSettings, step: int, tokens: int) -> float:
    """The rate for the step that follows `step` steps and `tokens` training tokens (all processes): the
    peak (training.learning_rate), times a linear warm-up over the first warmup_steps, times the schedule's
    decay over the budget (constant: none; linear and cosine: to final_lr_fraction of the peak at its end)."""
    warmup = min(1.0, (step + 1) / T.warmup_steps) if T.warmup_steps else 1.0
    if T.lr_schedule == "constant":
        return T.learning_rate * warmup
    progress = budget_progress(T.max_steps, T.max_tokens, step, tokens)
    if progress is None:  # check_config refuses a decaying schedule without a step or token budget
        raise ValueError("training.lr_schedule decays over training.max_steps or training.max_tokens; both are 0")
    shape = 1.0 - progress if T.lr_schedule == "linear" else 0.5 * (1.0 + math.cos(math.pi * progress))
    floor = T.final_lr_fraction
    return T.learning_rate * warmup * (floor + (1.0 - floor) * shape)


__all__ = ["SCHEDULES", "budget_progress", "learning_rate"]
