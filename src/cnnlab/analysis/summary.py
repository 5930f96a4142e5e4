"""`cnnlab.summary`: the per-layer table and totals of a model for an input size, never run on data."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from cnnlab.analysis.memory import training_memory
from cnnlab.analysis.rows import FP32, Summary, Totals
from cnnlab.analysis.trace import LayerFailure, Trace, trace
from cnnlab.errors import CnnlabError

_LARGEST_SEARCHED = 4096  # sides tried when looking for an input that works


def parse_shape(text: str) -> tuple[int, ...]:
    """'3x224x224', '3×224×224' or '3,224,224' → (3, 224, 224)."""
    parts = text.replace("×", "x").replace(",", "x").lower().split("x")
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise CnnlabError(f"bad input shape '{text}': write three positive whole numbers, channels x height x width, "
                          "e.g. 3x224x224")
    return shape


def shape_text(shape) -> str:
    return "×".join(str(s) for s in shape)


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


class _Subject:
    """The model to analyse on meta tensors, without touching the caller's module."""

    def __init__(self, model_or_name):
        if isinstance(model_or_name, str):
            from cnnlab.models import card, create

            self.label = card(model_or_name).name  # resolves aliases, suggests names on a typo
            with torch.device("meta"), _SkipInit():
                self.model = create(self.label, guard=False)  # our own errors name the failing layer
            self.state = None
        elif isinstance(model_or_name, nn.Module):
            model_or_name = getattr(model_or_name, "_orig_mod", model_or_name)  # torch.compile's wrapper
            if isinstance(model_or_name, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
                model_or_name = model_or_name.module
            self.model = model_or_name
            model_card = getattr(model_or_name, "card", None)
            self.label = model_card.name if model_card is not None else type(model_or_name).__name__
            self.state = {
                name: torch.empty_like(t, device="meta").requires_grad_(t.requires_grad)
                for name, t in [*model_or_name.named_parameters(), *model_or_name.named_buffers()]
            }
        else:
            raise CnnlabError(f"summary needs a model name or an nn.Module, not {type(model_or_name).__name__}")
        model_card = getattr(self.model, "card", None)
        self.default_shape = tuple(model_card.input_shape) if model_card is not None else None

    def run(self, shape: tuple[int, ...], batch: int, training: bool) -> Trace:
        modes = [(module, module.training) for module in self.model.modules()]
        self.model.train(training)
        try:
            return trace(self.model, torch.empty((batch, *shape), device="meta"), self.state)
        finally:
            for module, mode in modes:
                module.training = mode

    def works(self, shape: tuple[int, ...]) -> bool:
        try:
            self.run(shape, 2, training=False)
        except LayerFailure:
            return False
        return True


def _smallest_side(subject: _Subject, channels: int, start: int) -> int | None:
    """Smallest square side that runs: the card's default or a growing side that works, then bisect
    below it (sizes that run form one interval: windows only grow with their input)."""
    default = subject.default_shape
    if default and default[0] == channels and subject.works((channels, *default[1:])):
        high = min(default[1:])
        if not subject.works((channels, high, high)):
            high = max(default[1:])
    else:
        high = start
        while not subject.works((channels, high, high)):
            high *= 2
            if high > _LARGEST_SEARCHED:
                return None
    low = 0  # largest side known to fail
    while high - low > 1:
        middle = (low + high) // 2
        if subject.works((channels, middle, middle)):
            high = middle
        else:
            low = middle
    return high


def _input_error(subject: _Subject, shape: tuple[int, ...], failure: LayerFailure) -> CnnlabError:
    side = _smallest_side(subject, shape[0], max(shape[1:]) + 1) if len(shape) == 3 else None
    where = f"layer {failure.layer} ({failure.kind})"
    fix = (
        f"the smallest input that works is {shape_text((shape[0], side, side))}"
        + (f" (default {shape_text(subject.default_shape)})" if subject.default_shape else "")
        if side
        else f"no {shape[0]}-channel square input up to {_LARGEST_SEARCHED} works"
        + (f"; the model expects {shape_text(subject.default_shape)}" if subject.default_shape else "")
    )
    flagged = next((row for row in failure.rows if row.misfits and any(row.misfits)), None)
    if flagged is not None:
        fix += f"; note {flagged.name}: {flagged.flags[0]}"
    if failure.empty:
        return CnnlabError(f"input {shape_text(shape)} is too small for {subject.label}: {where} "
                           f"would have an empty output ({failure.detail.split('(')[-1].rstrip(')')}); {fix}")
    return CnnlabError(f"{subject.label} cannot run on input {shape_text(shape)}: {where} fails "
                       f"({failure.detail}); {fix}")


def summary(
    model_or_name,
    input_shape=None,
    batch: int = 1,
    *,
    depth: int | None = None,
    precision: str = "fp32",
    optimizer: str = "sgd",
) -> Summary:
    """Rows and totals for `model_or_name` (a zoo name or an nn.Module) at `input_shape` (C, H, W).

    Runs the model on `meta` tensors only, in train mode (so auxiliary heads are listed) and in
    eval mode (to mark them training-only). `depth` folds blocks nested deeper into one row.
    """
    subject = _Subject(model_or_name)
    if isinstance(input_shape, str):
        input_shape = parse_shape(input_shape)
    shape = tuple(input_shape) if input_shape is not None else subject.default_shape
    if shape is None:
        raise CnnlabError(f"{subject.label} has no card: pass input_shape, e.g. (3, 224, 224)")
    if batch < 1:
        raise CnnlabError(f"batch must be at least 1, not {batch}")
    if depth is not None and depth < 1:
        raise CnnlabError(f"depth must be at least 1, not {depth}")
    traced_batch = max(batch, 2)  # batch norm refuses one value per channel in train mode
    notes = []
    try:
        inference = subject.run(shape, traced_batch, training=False)
    except LayerFailure as failure:
        raise _input_error(subject, shape, failure) from None
    try:
        training = subject.run(shape, traced_batch, training=True)
    except (LayerFailure, CnnlabError) as failure:  # e.g. GoogLeNet's auxiliary heads need 224×224
        notes.append(f"the training-mode pass fails at this input ({failure}): training-only layers are "
                     "missing and the training memory counts the inference graph only")
        training = subject.run(shape, traced_batch, training=False)

    inference_rows = {row.name: row for row in inference.rows}
    for row in training.rows:
        row.training_only = row.name not in inference_rows
        if not row.training_only:  # dropout allocates a new tensor only in train mode
            row.allocates = inference_rows[row.name].allocates
        row.macs //= traced_batch
        row.other_ops //= traced_batch
    rows = training.rows
    kept = [row for row in rows if not row.training_only]

    named = list(subject.model.named_parameters())
    trainable = sum(p.numel() for _, p in named if p.requires_grad)
    total = sum(p.numel() for _, p in named)
    spatial = [row for row in kept if row.receptive_field and all(a.jump is not None for a in row.receptive_field)]
    totals = Totals(
        params=total,
        params_trainable=trainable,
        params_frozen=total - trainable,
        params_training_only=sum(row.params for row in rows if row.training_only),
        weights_bytes=sum(p.numel() * p.element_size() for _, p in named),
        input_bytes=FP32 * math.prod(shape),
        activation_bytes=sum(row.output_bytes for row in kept if row.allocates),
        macs=sum(row.macs for row in kept),
        other_ops=sum(row.other_ops for row in kept),
        depth=max((row.depth for row in kept), default=0),
        receptive_field=spatial[-1].receptive_field if spatial else (),
        training_memory=training_memory(
            params=total,
            trainable=trainable,
            steps=training.steps,
            batch_ratio=batch / traced_batch,
            precision=precision,
            optimizer=optimizer,
        ),
    )
    result = Summary(subject.label, shape, batch, rows, totals, training.blocks, notes)
    return result.fold(depth)

