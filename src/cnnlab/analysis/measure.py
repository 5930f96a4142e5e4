"""What a real training step allocates, storage by storage: the ground truth for the estimate.

On the CPU there is no `max_memory_allocated`, and the process's resident size mixes in the
allocator's caches and torch itself. A `TorchDispatchMode` sees every tensor an operation
returns, so it can follow each storage from birth to release and keep the peak of the bytes
alive: exact, and comparable with the analyzer's estimate (memory.py). The tests and
`benchmarks/analysis.py` check `cnnlab summary --fits` against it.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode


class LiveTensorMemory(TorchDispatchMode):
    """Peak bytes of tensor storage alive while it is active, storages in `known` excluded."""

    def __init__(self, known: set[int]):
        super().__init__()
        self.known, self.owners, self.live, self.peak = known, {}, 0, 0

    def _release(self, key):
        size, owners = self.owners[key]
        if owners > 1:
            self.owners[key] = (size, owners - 1)
        else:
            del self.owners[key]
            self.live -= size

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for tensor in out if isinstance(out, (tuple, list)) else [out]:
            if not isinstance(tensor, torch.Tensor):
                continue
            key = tensor.untyped_storage().data_ptr()
            if not key or key in self.known:
                continue
            size, owners = self.owners.get(key, (tensor.untyped_storage().nbytes(), 0))
            if owners == 0:
                self.live += size
                self.peak = max(self.peak, self.live)
            self.owners[key] = (size, owners + 1)
            weakref.finalize(tensor, self._release, key)
        return out


@dataclass
class StepMemory:
    resident: int  # weights, buffers and optimizer state, alive before the step
    forward_backward: int  # peak of the tensors born in forward and backward
    total: int  # the peak of the whole step: resident + the larger of forward-backward and the update


def _storages(tensors) -> dict[int, int]:
    return {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in tensors}


def _loss(output, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the logits, plus that of auxiliary heads' logits (GoogLeNet in train mode)."""
    logits = [output] if isinstance(output, torch.Tensor) else [t for t in output if isinstance(t, torch.Tensor)]
    return sum(nn.functional.cross_entropy(t, y) for t in logits)


def measure_training_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                          optimizer: torch.optim.Optimizer) -> StepMemory:
    """Peak memory of one cross-entropy training step, after a first step has made the optimizer
    state (as every step after the first has it). Gradients are set to None before each step."""
    model.train()
    optimizer.zero_grad(set_to_none=True)
    _loss(model(x), y).backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    state = [t for values in optimizer.state.values() for t in values.values() if isinstance(t, torch.Tensor)]
    resident = _storages([*model.parameters(), *model.buffers(), *state])
    with LiveTensorMemory(set(resident)) as memory:
        _loss(model(x), y).backward()
        forward_backward = memory.peak
        optimizer.step()
    size = sum(resident.values())
    return StepMemory(resident=size, forward_backward=forward_backward, total=size + memory.peak)
