"""Per-thread scratch memory for large inference intermediates.

A fresh tensor above glibc's mmap threshold gets new pages on every call, and the first write to each page
is a kernel page fault: filling an 88 MB GEMM output that way ran at about 0.7 GB/s here, and those faults
were a sixth of the full model's time. Reused memory stays mapped. One buffer per (slot, dtype, device) and
thread, grown on demand, so concurrent threads never share one.
"""
import threading
from typing import Dict, Tuple

import torch

_local = threading.local()


def scratch(slot: str, numel: int, like: torch.Tensor) -> torch.Tensor:
    """A 1-d tensor of numel elements with like's dtype and device; its contents are garbage and it is
    overwritten by the next call with the same slot in this thread."""
    buffers: Dict[Tuple[str, torch.dtype, torch.device], torch.Tensor] = getattr(_local, "buffers", None) or {}
    _local.buffers = buffers
    key = (slot, like.dtype, like.device)
    buffer = buffers.get(key)
    if buffer is None or buffer.numel() < numel:
        buffer = buffers[key] = like.new_empty(numel)
    return buffer[:numel]
