"""DistributedDataParallel through `torchrun`: nothing home-made.

`torchrun --nproc_per_node N -m cnnlab train ...` sets RANK, WORLD_SIZE, LOCAL_RANK and the
rendezvous address in the environment; `setup` joins the group (env://, NCCL on GPUs, gloo on
CPUs). Without those variables everything here is a no-op, so the single-process path stays plain.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from cnnlab.device import pick_device
from cnnlab.run.predictions import Predictions


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


def launched() -> bool:
    """Whether torchrun started this process as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def any_true(flag: bool, device: torch.device) -> bool:
    """Whether `flag` is true on any rank (a collective: every rank calls it)."""
    return bool(all_reduce(torch.tensor([int(flag)], device=device), "max").item())


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


def gather_objects(obj) -> list:
    """`obj` of every rank, in rank order (a one-element list when not distributed)."""
    if not (dist.is_initialized() and dist.get_world_size() > 1):
        return [obj]
    objects = [None] * dist.get_world_size()
    plain = {k: v.cpu() if torch.is_tensor(v) else v for k, v in obj.items()} if isinstance(obj, dict) else obj
    dist.all_gather_object(objects, plain)
    return objects


def gather_predictions(evaluation) -> Predictions:
    """The whole split's predictions from every rank's shard, in the split's order when the loader
    knows each image's position (in-memory data), else in rank order."""
    shards = gather_objects((evaluation.predictions, evaluation.positions))
    if len(shards) == 1:
        return evaluation.predictions
    parts = [p for p, _ in shards]
    merged = Predictions(*(np.concatenate([getattr(p, name) for p in parts]) for name in ("labels", "top", "probs")))
    if all(positions is not None for _, positions in shards):
        order = np.argsort(np.concatenate([positions for _, positions in shards]), kind="stable")
        merged = Predictions(merged.labels[order], merged.top[order], merged.probs[order])
    return merged

