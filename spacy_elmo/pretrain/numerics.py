"""How a run computes: the precision it trains in (training.precision, "auto" resolved for the device) and
torch's deterministic algorithms."""
from contextlib import contextmanager, nullcontext
from typing import ContextManager, Iterator, Optional, Tuple

import torch

from ..bilm.precision import unsupported_reason


def training_precision(setting: str, device: torch.device) -> str:
    """training.precision as it runs on `device`: "auto" is bf16 where the device runs bfloat16 natively
    (precision.unsupported_reason), else fp32; any other setting as given."""
    if setting != "auto":
        return setting
    return "fp32" if unsupported_reason("bfloat16", device) else "bf16"


def resolve_precision(setting: str, device: torch.device) -> Tuple[str, Optional[str]]:
    """The precision that runs, and for "auto" a line saying what it chose and why. bf16 trains to the same dev
    perplexity as fp32 (BENCHMARKS.md); where it is native it is faster on GEMMs large enough to outweigh its
    conversions, not on small ones; where it would be emulated it is slower."""
    precision = training_precision(setting, device)
    if setting != "auto":
        return precision, None
    reason = unsupported_reason("bfloat16", device)
    return precision, f"training.precision auto -> {precision}" + (
        f" ({reason})" if reason else f" (native bfloat16 on {device.type})")


def autocast(precision: str, device: torch.device) -> ContextManager:
    if precision == "fp32":
        return nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


@contextmanager
def deterministic_algorithms(enabled: bool) -> Iterator[None]:
    """torch's deterministic algorithms for the run, restored afterwards (the setting is process-wide). On CPU with
    two threads an fp32 run otherwise differs from its rerun after a few steps (the same batches, other rounding), and
    a biLM that differs that little moved the demo's ner at 10% by 1.3 F1 (docs/EXPERIMENTS.md). New memory is not filled with NaN
    as the deterministic mode does by default: nothing here reads memory it has not written, and the filling cost
    ~18% of the words/s of the demo's pretraining."""
    import torch.utils.deterministic as determinism

    before = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
              determinism.fill_uninitialized_memory)  # type: ignore[attr-defined]
    if enabled:
        torch.use_deterministic_algorithms(True)
        determinism.fill_uninitialized_memory = False  # type: ignore[attr-defined]
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
        determinism.fill_uninitialized_memory = before[2]  # type: ignore[attr-defined]


__all__ = ["training_precision", "resolve_precision", "autocast", "deterministic_algorithms"]
