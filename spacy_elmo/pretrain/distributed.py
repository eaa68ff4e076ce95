"""Device selection and torch.distributed set-up. Multi-GPU / multi-node runs are launched by torchrun,
which sets RANK, WORLD_SIZE, LOCAL_RANK and MASTER_ADDR/PORT; the model is wrapped in
DistributedDataParallel. Backend: nccl on CUDA, gloo on CPU."""
import os
from dataclasses import dataclass
from typing import Optional

import torch
import torch.distributed as dist

from .errors import PretrainError


@dataclass
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.distributed:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def broadcast_flag(self, flag: bool) -> bool:
        """True on every rank if it is True on any rank (used to stop all processes together)."""
        if not self.distributed:
            return flag
        t = torch.tensor([1.0 if flag else 0.0], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item() > 0)


def setup(gpu_id: int = -1) -> DistContext:
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = gpu_id >= 0
    if use_cuda and not torch.cuda.is_available():
        raise PretrainError(f"--gpu-id {gpu_id} was given but torch sees no CUDA device: use --gpu-id -1 for the CPU, "
                            "or install a CUDA build of torch on a machine with an NVIDIA GPU.")
    if use_cuda:
        index = gpu_id + local_rank if world_size > 1 else gpu_id
        device = torch.device("cuda", index)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistContext(rank=rank, world_size=world_size, local_rank=local_rank, device=device)


def teardown(ctx: Optional[DistContext]) -> None:
    if ctx is not None and ctx.distributed and dist.is_initialized():
        dist.destroy_process_group()


__all__ = ["DistContext", "setup", "teardown"]
