"""DistributedDataParallel through `torchrun`: nothing home-made.

`torchrun --nproc_per_node N -m cnnlab train ...` sets RANK, WORLD_SIZE, LOCAL_RANK and the
rendezvous address in the environment; `setup` joins the group (env://, NCCL on GPUs, gloo on
CPUs). Without those variables everything here is a no-op, so the single-process path stays plain.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Place:
    """Where this process trains: its device, rank and the number of ranks."""

    device: torch.device
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def pick_device(requested: str, local_rank: int = 0) -> torch.device:
    """"auto" is CUDA when present; under torchrun each local rank gets its own GPU."""
    from cnnlab.errors import CnnlabError

    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda"):
        if not torch.cuda.is_available():
            raise CnnlabError("--device cuda asked for, but PyTorch sees no CUDA GPU: use --device cpu or auto")
        if requested == "cuda":
            requested = f"cuda:{local_rank}"
    try:
        return torch.device(requested)
    except RuntimeError:
        raise CnnlabError(f"unknown --device '{requested}': use auto, cpu or cuda") from None


def setup(requested_device: str) -> Place:
    """Join the torchrun process group if launched by torchrun; pick this process's device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(requested_device, local_rank)
    if world_size == 1:
        return Place(device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", init_method="env://")
    return Place(device, dist.get_rank(), dist.get_world_size(), local_rank)


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def all_reduce(tensor: torch.Tensor, op: str = "sum") -> torch.Tensor:
    """Reduce over ranks in place ("sum", "min" or "max"); the tensor itself when not distributed."""
    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(tensor, {"sum": dist.ReduceOp.SUM, "min": dist.ReduceOp.MIN, "max": dist.ReduceOp.MAX}[op])
    return tensor


def barrier() -> None:
    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.barrier()
