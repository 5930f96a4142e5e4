"""`cnnlab.summary`: the per-layer table and totals of a model for an input size, never run on data."""

from __future__ import annotations

import contextlib
import gc
import inspect
import math

import torch
from torch import nn

from cnnlab.analysis.memory import check_options, training_memory
from cnnlab.analysis.rows import FP32, Summary, Totals
from cnnlab.analysis.shapes import parse_shape, shape_text
from cnnlab.analysis.ops import NOMINAL_FIELD, ShapeError
from cnnlab.analysis.trace import LayerFailure, Trace, modules_that_run, trace
from cnnlab.errors import CnnlabError
from cnnlab.models.external import build_model
from cnnlab.models.probe import smallest_side

_LARGEST_SEARCHED = 4096  # sides tried when looking for an input that works


class _Subject:
    """The model to analyse on meta tensors, without touching the caller's module."""

    def __init__(self, model_or_name, model_kwargs: dict | None = None):
        if isinstance(model_or_name, str):
            self.model = build_model(model_or_name, model_kwargs)  # on meta, without the zoo's input guard
            model_card = getattr(self.model, "card", None)
            self.label = model_card.name if model_card is not None else model_or_name
            self.state = None if _on_meta(self.model) else _meta_state(self.model)
        elif isinstance(model_or_name, nn.Module):
            if model_kwargs:
                raise CnnlabError("model_kwargs are for a model given by name; this module is built already")
            model_or_name = getattr(model_or_name, "_orig_mod", model_or_name)  # torch.compile's wrapper
            if isinstance(model_or_name, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
                model_or_name = model_or_name.module
            self.model = model_or_name
            model_card = getattr(model_or_name, "card", None)
            scripted = isinstance(model_or_name, torch.jit.ScriptModule)  # its class is RecursiveScriptModule
            class_name = model_or_name.original_name if scripted else type(model_or_name).__name__
            self.label = model_card.name if model_card is not None else class_name
            self.state = _meta_state(model_or_name)
        else:
            raise CnnlabError(f"summary needs a model name or an nn.Module, not {type(model_or_name).__name__}")
        _require_one_input(self.model, self.label)
        _require_python_modules(self.model, self.label)
        model_card = getattr(self.model, "card", None)
        self.default_shape = tuple(model_card.input_shape) if model_card is not None else None

    def run(self, shape: tuple[int, ...], batch: int, training: bool, backward: bool = False) -> Trace:
        """Trace in train or eval mode; `backward` records what a training step keeps."""
        with self._mode(training):
            return trace(self.model, torch.empty((batch, *shape), device="meta"), self.state, backward)

    def modules_at_inference(self, shape: tuple[int, ...], batch: int) -> dict[str, bool] | None:
        """{module name: allocates} of an untraced eval-mode pass; None where it fails (an input
        refused at inference, an operator without a meta kernel): the traced pass then says why."""
        with self._mode(False):
            try:
                return modules_that_run(self.model, torch.empty((batch, *shape), device="meta"), self.state)
            except (ShapeError, RuntimeError, NotImplementedError, TypeError, ValueError):
                return None

    @contextlib.contextmanager
    def _mode(self, training: bool):
        modes = [(module, module.training) for module in self.model.modules()]
        # train() would only set flags that are set already, unless a class has its own
        if any(mode != training or type(module).train is not nn.Module.train for module, mode in modes):
            self.model.train(training)
        try:
            yield
        finally:
            for module, mode in modes:
                if module.training != mode:  # nn.Module's __setattr__ is slow: set only what changed
                    module.training = mode

    def works(self, shape: tuple[int, ...]) -> bool:
        try:
            self.run(shape, 2, training=False)
        except LayerFailure:
            return False
        return True


def _on_meta(model: nn.Module) -> bool:
    return all(t.is_meta for t in [*model.parameters(), *model.buffers()])


def _meta_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Meta copies of a model's parameters and buffers, for `torch.func.functional_call`."""
    return {name: torch.empty_like(t, device="meta").requires_grad_(t.requires_grad)
            for name, t in [*model.named_parameters(), *model.named_buffers()]}


def _require_one_input(model: nn.Module, label: str) -> None:
    """The analyzer feeds one image batch: a forward that needs more is one clear line, not a TypeError."""
    try:
        parameters = inspect.signature(model.forward).parameters.values()
    except (TypeError, ValueError):
        return
    required = [p.name for p in parameters if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY,
                                                                               p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    if len(required) > 1:
        raise CnnlabError(f"{label}'s forward needs {len(required)} inputs ({', '.join(required)}), but the analyzer "
                          "passes one image batch: wrap it in a module whose forward(x) supplies the others")


def _smallest_side(subject: _Subject, channels: int, start: int) -> int | None:
    """Smallest square side that runs, from the card's default sides when they run."""
    default = subject.default_shape
    known = sorted(set(default[1:])) if default and default[0] == channels else ()
    return smallest_side(lambda side: subject.works((channels, side, side)), known, start, _LARGEST_SEARCHED)


def _require_python_modules(model: nn.Module, label: str) -> None:
    """TorchScript modules take no hooks and run their forward in C++, out of the tracer's sight."""
    scripted = next((name or "the model" for name, module in model.named_modules()
                     if isinstance(module, torch.jit.ScriptModule)), None)
    if scripted is not None:
        raise CnnlabError(f"{label}: {scripted} is a TorchScript module, which the analyzer cannot trace: "
                          "analyse the Python module it was scripted from")


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


def _input_shape(input_shape, subject: _Subject) -> tuple[int, ...]:
    if isinstance(input_shape, str):
        return parse_shape(input_shape)
    if input_shape is None:
        if subject.default_shape is None:
            raise CnnlabError(f"{subject.label} has no card saying its input: give one, e.g. --input 3x224x224 "
                              "(or input_shape=(3, 224, 224))")
        return subject.default_shape
    shape = tuple(input_shape)
    if not shape or not all(isinstance(s, int) and s >= 1 for s in shape):
        raise CnnlabError(f"bad input shape {input_shape!r}: give positive whole numbers, e.g. (3, 224, 224)")
    return shape


def _shared_parameters_note(model: nn.Module) -> list[str]:
    """Tied parameters (one tensor under several names) are counted once; say which."""
    first: dict[int, str] = {}
    tied: list[str] = []
    for name, p in model.named_parameters(remove_duplicate=False):
        if id(p) in first:
            tied.append(f"{name} = {first[id(p)]}")
        else:
            first[id(p)] = name
    if not tied:
        return []
    more = f" (and {len(tied) - 4} more)" if len(tied) > 4 else ""
    return [f"shared parameters counted once: {'; '.join(tied[:4])}{more}"]


@contextlib.contextmanager
def _collector_paused():
    """Python's cyclic garbage collector paused while we build and trace: every pass walks the many
    small objects a trace makes (rows, fractions, autograd nodes) and took up to a third of the time
    of a large model's summary. Nothing here needs it; it runs again as soon as we are done."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def summary(
    model_or_name,
    input_shape=None,
    batch: int = 1,
    *,
    depth: int | None = None,
    precision: str = "fp32",
    optimizer: str = "sgd",
    model_kwargs: dict | None = None,
) -> Summary:
    """Rows and totals for `model_or_name` at `input_shape` (C, H, W).

    `model_or_name` is an nn.Module, a zoo name, an import path (`torchvision.models:mobilenet_v2`),
    a file (`path/to/net.py:Net`) or `timm:NAME`; `model_kwargs` go to its constructor. Runs the
    model on `meta` tensors only, in train mode (so auxiliary heads are listed) and, where a module
    read its training flag, in eval mode (to mark them training-only). `depth` folds blocks nested
    deeper into one row.
    """
    with _collector_paused():
        return _summary(model_or_name, input_shape, batch, depth, precision, optimizer, model_kwargs)


def _traced(subject: _Subject, shape, batch: int, training: bool, backward: bool = False) -> Trace:
    """A traced pass; a layer that cannot take this input is the user's error, said where and why."""
    try:
        return subject.run(shape, batch, training=training, backward=backward)
    except LayerFailure as failure:
        raise _input_error(subject, shape, failure) from None


def _mark_inference(row, modules: set[str], at_inference: dict[str, bool]) -> None:
    """Training-only: the module a row belongs to does not run at inference (auxiliary heads).
    A row belongs to its layer (`layer1.0.conv1`, `relu#2` when called again), a function's row to
    its enclosing block (`inception3a.cat`), a top-level call's to the model (""), which always
    runs. A layer that does run keeps the inference pass's allocation (dropout returns its input)."""
    layer = row.name.split("#")[0]
    owner = layer if layer in modules else (layer.rsplit(".", 1)[0] if "." in layer else "")
    row.training_only = owner != "" and owner not in at_inference
    if owner == layer and not row.training_only:
        row.allocates = at_inference[layer]

def _summary(model_or_name, input_shape, batch, depth, precision, optimizer, model_kwargs) -> Summary:
    check_options(precision, optimizer)
    if batch < 1:
        raise CnnlabError(f"batch must be at least 1, not {batch}")
    if depth is not None and depth < 1:
        raise CnnlabError(f"depth must be at least 1, not {depth}")
    subject = _Subject(model_or_name, model_kwargs)
    shape = _input_shape(input_shape, subject)
    traced_batch = max(batch, 2)  # batch norm refuses one value per channel in train mode
    notes = _shared_parameters_note(subject.model)
    try:
        training = subject.run(shape, traced_batch, training=True, backward=True)
    except (LayerFailure, CnnlabError) as failure:  # e.g. GoogLeNet's auxiliary heads need 224×224
        training = _traced(subject, shape, traced_batch, training=False, backward=True)
        notes.append(f"the training-mode pass fails at this input ({failure}): training-only layers are "
                     "missing and the training memory counts the inference graph only")
        at_inference = None
    else:  # no module read its training flag: the inference pass would run just what this one ran
        at_inference = subject.modules_at_inference(shape, traced_batch) if training.mode_matters else None
        if training.mode_matters and at_inference is None:
            _traced(subject, shape, traced_batch, training=False)  # an input refused at inference is an error
            notes.append("an operator has no meta kernel at inference: training-only layers are not marked")
    modules = {name for name, _ in subject.model.named_modules()} if at_inference is not None else set()
    for row in training.rows:
        if at_inference is not None:
            _mark_inference(row, modules, at_inference)
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
        activation_bytes=sum(row.counted_bytes for row in kept),
        macs=sum(row.macs for row in kept),
        other_ops=sum(row.other_ops for row in kept),
        depth=max((row.depth for row in kept), default=0),
        receptive_field=spatial[-1].receptive_field if spatial else (),
        receptive_field_nominal=any(NOMINAL_FIELD in row.notes for row in kept),
        training_memory=training_memory(
            params=total,
            trainable=trainable,
            steps=training.steps,
            batch_ratio=batch / traced_batch,
            precision=precision,
            optimizer=optimizer,
        ),
    )
    result = Summary(subject.label, shape, batch, rows, totals, training.blocks, notes, training.steps, traced_batch)
    return result.fold(depth)
