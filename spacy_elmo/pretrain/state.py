"""What a pretraining run changes as it trains, in one typed object.

The counters (step, epoch, batch_in_epoch, tokens, elapsed) are what a checkpoint's "state" holds: the data
order is a pure function of (corpus, seed, epoch), so they say exactly where a resumed run continues."""
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import torch

COUNTERS = ("step", "epoch", "batch_in_epoch", "tokens", "elapsed")


@dataclass
class TrainingState:
    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0  # batches of this epoch consumed (by every process together)
    tokens: int = 0  # training tokens seen, summed over processes
    elapsed: float = 0.0  # training seconds, earlier runs of this output included
    history: List[Dict[str, Any]] = field(default_factory=list)  # every dev evaluation
    # The dev evaluation with the lowest perplexity so far, and (rank 0) a CPU copy of the model's weights at
    # that step: what training.export = "best" exports, kept in every checkpoint.
    best: Optional[Dict[str, Any]] = None
    best_weights: Optional[Dict[str, torch.Tensor]] = None
    extra_metrics: Dict[str, Any] = field(default_factory=dict)  # written into metrics.json as they are
    learning_rate: float = 0.0  # the last step's (training.lr_schedule)
    bilm_frozen: bool = False  # training.freeze_bilm_steps: requires_grad is off on the biLM's parameters
    last_checkpoint_step: int = -1  # the step of the newest complete checkpoint (-1: none)
    wrote_checkpoint: bool = False  # this process wrote one (a fresh run that did not cleans up when it fails)

    def counters(self) -> Dict[str, Any]:
        return {name: getattr(self, name) for name in COUNTERS}

    def load_counters(self, saved: Dict[str, Any]) -> None:
        for name in COUNTERS:
            if name in saved:
                setattr(self, name, saved[name])


__all__ = ["TrainingState", "COUNTERS"]
