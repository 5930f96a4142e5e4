"""The real forward pass, one record per analyzer row: the value each row produced and which rows
fed it.

The analyzer (`cnnlab.analysis`) traces a model on meta tensors and gives every layer call a row:
each call of a leaf module, and each torch call made outside leaf modules (the `+` of a residual
block, the `torch.cat` of an Inception module, `torch.flatten`). The explorer needs the same calls
with real numbers, so it runs the model once on the image with the analyzer's two hooks (module
hooks and a `TorchFunctionMode`), follows tensor identity for the graph's edges, and pairs its
records with the analyzer's rows in order, checking every output shape. The names, windows,
parameters and receptive fields all come from the analyzer; this module only adds values and edges.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from cnnlab.analysis.trace import tensors_in

INPUT = -1  # the producer of the model's input
INSIDE = -2  # the producer of a tensor made inside a leaf module (the leaf's own output aside)


@dataclass
class Call:
    """One analyzer row's call on real data."""

    module: nn.Module | None  # the leaf module, or None for a torch call outside leaves
    func: object = None  # the torch function, for calls outside leaves
    args: tuple = ()  # its arguments (for reading e.g. a concatenation's dim)
    sources: list[int] = field(default_factory=list)  # producing calls of its traced inputs (INPUT: the image)
    output: torch.Tensor | None = None  # a copy of its first output (later in-place ops cannot change it)


class _Recorder(TorchFunctionMode):
    """Records calls by the analyzer's rule (see `cnnlab.analysis.trace.Tracer`)."""

    def __init__(self, x: torch.Tensor):
        super().__init__()
        self.producer: dict[int, int] = {id(x): INPUT}
        self.alive: list[torch.Tensor] = [x]  # keeps ids unique while the pass runs
        self.calls: list[Call] = []
        self.leaves: list[tuple[nn.Module, list[int]]] = []  # open leaf calls and their sources
        self.copying = False  # our own copies are not the model's calls

    def _sources(self, tensors) -> list[int]:
        return [self.producer[id(t)] for t in tensors if id(t) in self.producer]

    def _produce(self, tensors, index: int) -> None:
        for tensor in tensors:
            self.producer[id(tensor)] = index
            self.alive.append(tensor)

    def pre_hook(self, module, args, kwargs):
        if next(module.children(), None) is None:
            self.leaves.append((module, self._sources(tensors_in((args, kwargs)))))

    def post_hook(self, module, args, kwargs, output):
        if next(module.children(), None) is not None:
            return
        module, sources = self.leaves.pop()
        outputs = tensors_in(output)
        if not outputs or (not sources and id(outputs[0]) not in self.producer):
            return
        self._append(Call(module, sources=sources), outputs)

    def _append(self, call: Call, outputs: list[torch.Tensor]) -> None:
        self.copying = True
        try:
            call.output = outputs[0].detach().clone()
        finally:
            self.copying = False
        self.calls.append(call)
        self._produce(outputs, len(self.calls) - 1)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        result = func(*args, **kwargs)
        if self.copying:
            return result
        sources = self._sources(tensors_in((args, kwargs)))
        outputs = tensors_in(result)
        if not sources or not outputs:
            return result
        if self.leaves:  # inside a leaf: the leaf's row stands for the call
            self._produce(outputs, INSIDE)
        else:
            self._append(Call(None, func, args, sources), outputs)
        return result


def record(model: nn.Module, x: torch.Tensor) -> tuple[list[Call], torch.Tensor]:
    """The calls of `model(x)` (no gradients) in the analyzer's row order, and the model's output."""
    recorder = _Recorder(x)
    handles = []
    for module in model.modules():
        handles.append(module.register_forward_pre_hook(recorder.pre_hook, with_kwargs=True))
        handles.append(module.register_forward_hook(recorder.post_hook, with_kwargs=True))
    try:
        with torch.no_grad(), recorder:
            output = model(x)
    finally:
        for handle in handles:
            handle.remove()
    return recorder.calls, output


def check_against(calls: list[Call], rows) -> None:
    """The recorded calls must be the analyzer's inference rows, one for one, shape for shape."""
    if len(calls) != len(rows):
        raise RuntimeError(f"explorer: the real pass made {len(calls)} layer calls, the analyzer "
                           f"{len(rows)} rows (a cnnlab bug: please report it with the model)")
    for call, row in zip(calls, rows):
        if tuple(call.output.shape[1:]) != tuple(row.output_shape):
            raise RuntimeError(f"explorer: {row.name} gives {tuple(call.output.shape[1:])} on real data but "
                               f"{tuple(row.output_shape)} in the analyzer (a cnnlab bug: please report it)")
