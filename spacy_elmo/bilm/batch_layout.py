"""The layout the LSTM stacks run a batch in, shared by the inference loop (lstm.py) and the training
Function (lstm_train.py): rows sorted longest first, so the rows still active at step t are a prefix."""
from dataclasses import dataclass
from typing import List, Sequence

import torch

# Timesteps whose input projections are computed in one GEMM; bounds memory on very long inputs.
TIME_BLOCK = 64


def counts_above(values: Sequence[int], n: int) -> torch.Tensor:
    """(n,) tensor: for each i < n, how many of values exceed i. Rows' lengths -> active rows per step
    (batch_sizes), and, rows being sorted longest first, batch_sizes -> each row's length: the same count."""
    counts = torch.as_tensor(list(values), dtype=torch.long)
    return (counts.unsqueeze(0) > torch.arange(n).unsqueeze(1)).sum(1)


@dataclass(frozen=True)
class PackedBatch:
    """The layout the LSTM stacks run a batch in: rows sorted longest first (stable), so that the rows
    still active at step t are the first batch_sizes[t] and a step never touches finished rows.
    order[i] = the caller's row at sorted position i; lengths are the sorted lengths."""
    order: torch.Tensor
    lengths: torch.Tensor
    batch_sizes: List[int]

    @classmethod
    def from_lengths(cls, lengths: torch.Tensor, n_steps: int) -> "PackedBatch":
        order = torch.argsort(lengths, descending=True, stable=True)
        lengths_sorted = lengths[order]
        return cls(order, lengths_sorted, counts_above(lengths_sorted.tolist(), n_steps).tolist())

    @staticmethod
    def lengths_from_batch_sizes(batch_sizes: Sequence[int], n_rows: int) -> torch.Tensor:
        """The sorted rows' lengths back from the active-row counts (the same count, read the other way)."""
        return counts_above(batch_sizes, n_rows)

    def unsort(self) -> torch.Tensor:
        """Index that puts sorted rows back in the caller's order: x_sorted[unsort()] == x."""
        unsort = torch.empty_like(self.order)
        unsort[self.order] = torch.arange(len(self.order), device=self.order.device)
        return unsort


__all__ = ["TIME_BLOCK", "PackedBatch", "counts_above"]
