"""The meta-device probe: build a model without memory, try an input on it, find what fits.

One home for what the input guard (which sizes does this model take?), the analyzer (the
smallest input that works) and transfer (the shapes of a model's state dict) each need. Nothing
here allocates weights or does arithmetic: tensors on the `meta` device have shapes only.
"""

from __future__ import annotations

import copy
import itertools
from typing import Callable, Iterable

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

# in-place calls that change a tensor's metadata, not its values: a builder's must still run
_KEEP_IN_PLACE = {"requires_grad_", "resize_", "resize_as_", "set_", "as_strided_", "squeeze_", "unsqueeze_",
                  "transpose_", "t_", "swapdims_", "swapaxes_", "share_memory_"}


class _SkipInit(TorchFunctionMode):
    """Meta tensors hold no values, so initialisers (`normal_`, `uniform_`, `zero_` …) are skipped:
    on meta, `normal_` alone imports torch._dynamo, ~10 s of a cold `cnnlab summary`."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        target = args[0] if args else kwargs.get("tensor")
        if (name.endswith("_") and not name.endswith("__") and name not in _KEEP_IN_PLACE
                and getattr(target, "is_meta", False)):
            return target
        return func(*args, **kwargs)


def build_on_meta(build: Callable[[], nn.Module]) -> nn.Module:
    """`build()` with every tensor on the meta device and no initialiser run: instant, no memory."""
    with torch.device("meta"), _SkipInit():
        return build()


# Layers that never change a tensor's shape: a probe copy skips them (as nn.Identity), because
# elementwise ops are slow on the meta device (milliseconds each) while they decide nothing here.
_SHAPE_PRESERVING = (
    nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.ReLU, nn.Tanh, nn.Sigmoid,
    nn.Dropout, nn.Dropout2d, nn.LocalResponseNorm,
)

PROBE_BATCH = 2  # batch norm in training mode needs more than one value per channel


class Probe:
    """A weightless copy of an existing model on the meta device, to try input shapes on.

    The copy leaves every hook (ours, the user's) behind, so trying a shape fires none of them."""

    def __init__(self, model: nn.Module):
        memo: dict[int, object] = {}
        for tensor in itertools.chain(model.parameters(), model.buffers()):
            meta = torch.empty_like(tensor, device="meta")
            memo[id(tensor)] = nn.Parameter(meta, tensor.requires_grad) if isinstance(tensor, nn.Parameter) else meta
        for submodule in model.modules():
            if isinstance(submodule, _SHAPE_PRESERVING):
                memo[id(submodule)] = nn.Identity()
            for attribute, value in vars(submodule).items():
                if "hooks" in attribute and isinstance(value, dict):
                    memo[id(value)] = type(value)()
        self.model = copy.deepcopy(model, memo)
        floats = [p.dtype for p in model.parameters() if p.is_floating_point()]
        self.dtype = floats[0] if floats else torch.get_default_dtype()

    def fits(self, shape, training: bool | None = None) -> bool:
        """Does the model run on a batch of `shape` (without the batch size), in its mode or `training`?"""
        x = torch.empty((PROBE_BATCH, *shape), device="meta", dtype=self.dtype)
        mode = self.model.training
        try:
            with torch.no_grad():
                self.model.train(mode if training is None else training)(x)
        except Exception:  # any failure here is caused by the shape: callers know a shape that works
            return False
        finally:
            self.model.train(mode)
        return True

    def range_along(self, dim: int, reference: tuple[int, ...], unbounded_factor: int = 16) -> tuple[int, int | None]:
        """(smallest, largest or None if unbounded) size along `dim` (1 = H), others at `reference`.

        A model that takes `unbounded_factor` × its reference size is taken to accept any larger one."""

        def fits(size: int) -> bool:
            return self.fits(reference[:dim] + (size,) + reference[dim + 1:])

        start = reference[dim]
        low = first_true(fits, 1, start)
        far = start * unbounded_factor
        if fits(far):
            return low, None
        return low, first_true(lambda size: not fits(size), start, far) - 1


def first_true(predicate: Callable[[int], bool], low: int, high: int) -> int:
    """Smallest n in [low, high] with predicate(n) true, given predicate(high) is true and the
    predicate is monotone (false … false true … true). The output size of convolutions and
    poolings never shrinks as their input grows, so the sizes a model takes form one interval."""
    while low < high:
        middle = (low + high) // 2
        if predicate(middle):
            high = middle
        else:
            low = middle + 1
    return low


def smallest_side(fits: Callable[[int], bool], known: Iterable[int] = (), start: int = 1,
                  limit: int = 4096) -> int | None:
    """Smallest square side n with `fits(n)`: from the first of the `known` sides that fits (a
    card's default), else from `start` doubling up to `limit` (None when nothing up to it fits),
    then bisecting below it."""
    high = next((side for side in known if fits(side)), None)
    if high is None:
        high = start
        while not fits(high):
            high *= 2
            if high > limit:
                return None
    return first_true(fits, 1, high)
