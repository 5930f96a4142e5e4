"""The abstract forward pass: run a model on `meta` tensors and record one row per layer call.

Why this design (hooks + `TorchFunctionMode`, not FX or `torch.export`):
- Module hooks alone miss the functional calls of a `forward` (`torch.flatten`, `F.relu`, the
  `+` of a residual block, `torch.cat` of an Inception module); a `TorchFunctionMode` sees every
  torch call, functional or not, and tensor identity gives us the graph edges for receptive fields.
- FX / `torch.export` need a traceable forward: data-dependent Python (`if self.training:` for
  auxiliary heads, shape checks, `x.size(0)` loops) breaks or is specialised away, and they
  reject some models outright. Eager execution on `meta` runs any forward that runs at all,
  in train mode too (so auxiliary heads appear), and costs no memory and almost no time.
- Autograd works on `meta`, so `saved_tensors_hooks` tells us exactly which tensors backward
  keeps (the training-memory estimate), instead of a rule of thumb.
"""

from __future__ import annotations

import contextlib
import math
import threading
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from cnnlab.analysis.geometry import Axis, merge, misfit
from cnnlab.analysis.ops import Call, EmptyOutput, Result, ShapeError, computed_result, describe, op_name
from cnnlab.analysis.rows import BlockCall, Row


class LayerFailure(Exception):
    """The forward pass failed inside a layer; `empty` is set when its output would be empty."""

    def __init__(self, layer: str, kind: str, detail: str, empty: bool, rows: list[Row]):
        super().__init__(f"{layer} ({kind}): {detail}")
        self.layer, self.kind, self.detail, self.empty = layer, kind, detail, empty
        self.rows = rows  # the layers that did run, with their flags


@dataclass
class _Info:
    """What the tracer knows about a tensor: its receptive field, weighted depth and producer."""

    rf: tuple[Axis, ...]
    depth: int
    producer: Row | None = None  # the row that made it (None for the input)


@dataclass
class _Frame:
    module: nn.Module
    name: str
    row: Row | None = None  # set for leaves: the row their inner calls accumulate into
    block: int | None = None  # index into blocks, for modules with children
    inputs: list[torch.Tensor] = field(default_factory=list)


@dataclass
class Step:
    """One traced call, for replaying backward: what its backward allocates and frees (bytes)."""

    gradients: int = 0  # fp32 gradients of the trainable parameters it uses first
    activation_gradients: int = 0  # gradients of its output and input, alive while it runs backward
    frees_float: int = 0  # saved floating-point tensors released after its backward (fp32 bytes)
    frees_other: int = 0  # saved indices and masks released after its backward


@dataclass
class Trace:
    rows: list[Row]
    blocks: list[BlockCall]
    saved_bytes: dict[str, int]  # bytes autograd saved for backward: {"float": ..., "other": ...}
    steps: list[Step]  # every traced call in forward order
    mode_matters: bool = True  # False where the pass provably ran the same in the other mode


def tensors_in(obj) -> list[torch.Tensor]:
    """Tensors in nested tuples/lists/dicts (torch's pytree is ~3× slower on this hot path)."""
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, (tuple, list)):
        return [t for item in obj for t in tensors_in(item)]
    if isinstance(obj, dict):
        return [t for item in obj.values() for t in tensors_in(item)]
    return []


def _image_shape(tensor: torch.Tensor) -> tuple[int, ...]:
    return tuple(tensor.shape[1:])


INPUT = "input"  # the producer named in `Row.inputs` for the model's own input
# Our hooks' own look at tensors (shapes, views) is not the model's: it bypasses the tracer and
# costs no dispatch through it (a tenth of a small model's trace).
_UNTRACED = torch._C.DisableTorchFunction


class Tracer(TorchFunctionMode):
    """Records rows while `model` runs on meta tensors; see the module docstring."""

    def __init__(self, model: nn.Module, params: dict[int, tuple[str, bool]], param_storages: set[int]):
        super().__init__()
        self.names = {module: name for name, module in model.named_modules()}
        self.root = model
        self.params = params  # id(meta parameter) -> (qualified name, trainable)
        self.info: dict[int, _Info] = {}
        self.keep: list[torch.Tensor] = []  # holds traced tensors so their ids stay unique
        self.rows: list[Row] = []
        self.blocks: list[BlockCall] = []
        self.stack: list[_Frame] = []
        self.counts: dict[str, int] = {}
        self.attributed: set[str] = set()
        self.param_storages = param_storages  # storages of parameters: not activations
        self.saved: dict[object, tuple[int, bool, int]] = {}  # storage (or an extra) -> (bytes, is float, first step)
        self.steps: list[Step] = []
        self.with_gradient: set[int] = set()  # trainable parameters some step already uses
        self.consumers: dict[int, list[bool]] = {}  # id(producing row) -> is each consumer a gather

    # -- bookkeeping -------------------------------------------------------------------------
    def _mark(self, tensor: torch.Tensor, info: _Info) -> None:
        self.info[id(tensor)] = info
        self.keep.append(tensor)

    def _unique(self, name: str) -> str:
        self.counts[name] = self.counts.get(name, 0) + 1
        return name if self.counts[name] == 1 else f"{name}#{self.counts[name]}"

    def _calls(self) -> tuple[int, ...]:
        return tuple(frame.block for frame in self.stack if frame.block is not None)

    def _leaf(self) -> _Frame | None:
        return next((frame for frame in reversed(self.stack) if frame.row is not None), None)

    def _scope(self) -> str:
        return next((frame.name for frame in reversed(self.stack) if frame.name), "")

    def _attribute(self, row: Row, tensors) -> None:
        for tensor in tensors:
            entry = self.params.get(id(tensor))
            if entry is None or entry[0] in self.attributed:
                continue
            self.attributed.add(entry[0])
            if entry[1]:
                row.params_trainable += tensor.numel()
            else:
                row.params_frozen += tensor.numel()

    # -- module hooks ------------------------------------------------------------------------
    def pre_hook(self, module, args, kwargs):
        with _UNTRACED():
            name = self.names.get(module, type(module).__name__)
            inputs = [t for t in tensors_in((args, kwargs)) if id(t) in self.info]
            is_leaf = all(child is None for child in module._modules.values())  # children() without its generator
            frame = _Frame(module, name, inputs=inputs)
            if is_leaf:
                frame.row = Row(name=self._unique(name or type(module).__name__.lower()),
                                type=type(module).__name__, calls=self._calls())
                if inputs:
                    frame.row.input_shape = _image_shape(inputs[0])
                self._read(frame.row, inputs)  # before the leaf's in-place calls re-make its input
            elif module is self.root:
                frame.name = ""
            else:
                level = len(self._calls()) + 1
                frame.block = len(self.blocks)
                self.blocks.append(
                    BlockCall(self._unique(name), type(module).__name__, level, first_row=len(self.rows),
                              input_shape=_image_shape(inputs[0]) if inputs else ())
                )
            self.stack.append(frame)

    def post_hook(self, module, args, kwargs, output):
        with _UNTRACED():
            frame = self.stack.pop()
            outputs = tensors_in(output)
            if frame.row is not None:
                self._finish_leaf(frame, outputs)
            elif frame.block is not None and outputs and id(outputs[0]) in self.info:
                block = self.blocks[frame.block]
                block.last_row = len(self.rows) - 1
                block.output_shape = _image_shape(outputs[0])
                block.receptive_field = self.info[id(outputs[0])].rf

    def _finish_leaf(self, frame: _Frame, outputs: list[torch.Tensor]) -> None:
        row = frame.row
        # a leaf's parameters are its own (`_parameters`, also under functional_call): no module walk
        self._attribute(row, [p for p in frame.module._parameters.values() if p is not None])
        input_ids = {id(t) for t in frame.inputs}
        for index, out in enumerate(outputs):
            info = self.info.get(id(out)) or (self.info[id(frame.inputs[0])] if frame.inputs else None)
            if info is None:
                continue
            if index == 0:
                row.output_shape = _image_shape(out)
                row.output_values = math.prod(out.shape[1:])
                row.allocates = id(out) not in input_ids and not out._is_view()
                row.receptive_field, row.depth = info.rf, info.depth
            self._mark(out, _Info(info.rf, info.depth, row))
        if row.output_shape:
            self.rows.append(row)

    # -- every torch call --------------------------------------------------------------------
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        leaf = self._leaf()
        everything = tensors_in((args, kwargs))
        try:
            computed = computed_result(func, args, kwargs)
            if computed is None:
                result = func(*args, **kwargs)
            else:
                x = next(t for t in everything if t.is_floating_point())
                result = self._stand_in(computed, x, [t for t in everything if t is not x])
        except EmptyOutput as error:
            raise self._failure(leaf, func, f"output would be empty ({error})", empty=True) from None
        except (RuntimeError, ShapeError) as error:
            raise self._failure(leaf, func, str(error).splitlines()[0], empty=False) from None
        inputs = [t for t in everything if id(t) in self.info]
        outputs = tensors_in(result)
        if not inputs or not outputs:
            return result
        out = outputs[0]
        call = describe(func, args, kwargs, inputs, out)
        sources = inputs[:1] if call.nominal_field else inputs  # a deformable layer: its input's grid, not its offsets
        rf, offsets = self._propagate(call, sources, out)
        depth = max(self.info[id(t)].depth for t in sources) + (1 if call.macs else 0)
        if leaf is not None:
            row = leaf.row
        else:
            row = Row(name=self._unique(".".join(filter(None, (self._scope(), call.name)))), type=call.name,
                      input_shape=_image_shape(inputs[0]), calls=self._calls())
            row.output_shape = _image_shape(out)
            row.output_values = math.prod(out.shape[1:])
            row.allocates = all(out is not t for t in inputs) and not out._is_view()
            row.receptive_field, row.depth = rf, depth
            row.gather = call.gather
            if len(inputs) > 1:
                row.input_shapes = tuple(_image_shape(t) for t in inputs)
            self.rows.append(row)
        self._read(row, inputs)
        self._consume(row, inputs, gather=call.gather and leaf is None)
        if any(offsets) and not row.misalignment:
            row.misalignment = offsets
        self._attribute(row, everything)
        self._step(everything, inputs[0], out)
        row.macs += call.macs
        row.other_ops += call.other
        if call.note and call.note not in row.notes:
            row.notes += (call.note,)
        if call.windows and not row.windows:
            row.windows, row.groups, row.units = call.windows, call.groups, call.units
            sizes = inputs[0].shape[-len(call.windows):]
            row.misfits = tuple(misfit(w, s) for w, s in zip(call.windows, sizes))
        elif call.units is not None and row.units is None:
            row.units = call.units
        for tensor in outputs:
            self._mark(tensor, _Info(rf, depth, row))
        return result

    def _read(self, row: Row, tensors) -> None:
        """Record that `row` reads `tensors`: one edge from each tensor's producer row (`Row.inputs`)."""
        for tensor in tensors:
            producer = self.info[id(tensor)].producer
            source = producer.name if producer is not None else INPUT
            if source != row.name and source not in row.inputs:
                row.inputs += (source,)

    def _consume(self, row: Row, inputs: list[torch.Tensor], gather: bool) -> None:
        for tensor in inputs:
            producer = self.info[id(tensor)].producer
            if producer is not None and producer is not row:
                self.consumers.setdefault(id(producer), []).append(gather)

    def mark_copies(self) -> None:
        """Gathers (x[:, index]) and a concatenation only made to be gathered are implementation
        copies: lenet5_1998's C3 gathers its inputs for grouped convolutions, concatenates their
        outputs and permutes them back into the paper's order; the network itself has only C3's maps."""
        for row in self.rows:
            consumers = self.consumers.get(id(row), [])
            row.implementation_copy = row.gather or (row.type in ("cat", "concat", "concatenate", "stack")
                                                     and bool(consumers) and all(consumers))

    def _step(self, tensors: list[torch.Tensor], x: torch.Tensor, out: torch.Tensor) -> None:
        step = Step(activation_gradients=(x.numel() + out.numel()) * 4 if out.is_floating_point() else 0)
        for tensor in tensors:
            entry = self.params.get(id(tensor))
            if entry is not None and entry[1] and id(tensor) not in self.with_gradient:
                self.with_gradient.add(id(tensor))
                step.gradients += tensor.numel() * 4
        self.steps.append(step)

    def _propagate(self, call: Call, inputs: list[torch.Tensor], out: torch.Tensor):
        """(receptive field of `out`, centre offsets of merged branches): through windows, adaptive
        pooling, merges or collapses."""
        fields = [self.info[id(t)].rf for t in inputs]
        rf, offsets = merge(fields) if len(fields) > 1 else (fields[0], ())
        source = inputs[0]
        if call.windows:
            return tuple(axis.through(w) for axis, w in zip(rf, call.windows)), offsets
        n = len(rf)
        if call.adaptive:
            return tuple(axis.adaptive(s, o) for axis, s, o in zip(rf, source.shape[-n:], call.adaptive)), offsets
        if n and out.dim() >= n + 1 and tuple(out.shape[-n:]) == tuple(source.shape[-n:]):
            return rf, offsets  # spatial axes untouched: elementwise, concatenation along channels ...
        if n and source.dim() >= n + 2:  # flatten, global ops
            return tuple(axis.collapsed(s) for axis, s in zip(rf, source.shape[-n:])), offsets
        return rf, offsets

    def _failure(self, leaf: _Frame | None, func, detail: str, empty: bool) -> LayerFailure:
        if leaf is not None:
            return LayerFailure(leaf.row.name, leaf.row.type, detail, empty, self.rows)
        name = ".".join(filter(None, (self._scope(), op_name(func))))
        return LayerFailure(name, op_name(func), detail, empty, self.rows)

    # -- autograd's saved tensors --------------------------------------------------------------
    def pack(self, tensor: torch.Tensor):
        """autograd's pack hook: a storage saved for backward, counted once, parameters excluded."""
        storage = tensor.untyped_storage()
        self._record_saved(storage._cdata, storage.nbytes(), tensor.is_floating_point())
        return tensor

    def _record_saved(self, key, nbytes: int, is_float: bool) -> None:
        if key not in self.param_storages and key not in self.saved:
            self.saved[key] = (nbytes, is_float, len(self.steps))

    def _stand_in(self, result: Result, x: torch.Tensor, others: list[torch.Tensor]) -> torch.Tensor:
        """A meta result of the shape `ops.computed_result` gave, keeping for backward what the
        real op keeps (its input for convolution, linear and batch norm, its output for ReLU ...;
        `Result.saves`). Stands in for torch's meta kernels: batch norm's is a Python decomposition
        (~20 ms a call), and the first convolution or linear call imports torch._dynamo (seconds).
        By hand, not as an autograd.Function: nothing here is differentiated, and it costs less."""
        needs_grad = torch.is_grad_enabled() and (x.requires_grad or any(t.requires_grad for t in others))
        out = torch.empty(result.shape, dtype=x.dtype, device=x.device, requires_grad=needs_grad)
        if not needs_grad:  # autograd keeps nothing either
            return out
        out = out.clone()  # not a leaf, as the real op's result is: in-place calls on it are allowed
        if result.saves == "input":
            kept = [x]
        elif result.saves == "operands":  # each operand is kept for its partner's gradient
            kept = [b for a, b in ((x, others[0]), (others[0], x)) if a.requires_grad] if others else []
        else:
            kept = [out] if result.saves == "output" else []
        for tensor in kept:
            self.pack(tensor)
        for shape, dtype in result.extra:  # max-pool indices, dropout masks: tensors of their own
            self._record_saved(("extra", len(self.saved)), math.prod(shape) * dtype.itemsize, dtype.is_floating_point)
        return out


def _forward(model: nn.Module, x: torch.Tensor, state: dict[str, torch.Tensor] | None) -> None:
    """`model(x)`, or through `functional_call` with `state` standing for its own tensors."""
    if state is None:
        model(x)
    else:
        torch.func.functional_call(model, state, (x,))


def trace(model: nn.Module, x: torch.Tensor, state: dict[str, torch.Tensor] | None = None,
          backward: bool = True) -> Trace:
    """Run `model` on the meta tensor `x` (in its current train/eval mode) and record it.

    `state` maps parameter and buffer names to meta tensors for a model whose own tensors live
    elsewhere (it is then called through `torch.func.functional_call`, leaving it untouched).
    With `backward=False` autograd records nothing (rows only: no saved tensors, no gradients),
    which is all that trying an input needs, and costs less. `Trace.mode_matters` is False where
    no module read its `training` flag (see `_ModeWatch`): the other mode would run the same.
    """
    original = dict(model.named_parameters())
    named = dict(state) if state is not None else original
    params = {id(named[name]): (name, p.requires_grad) for name, p in original.items() if name in named}
    storages = {named[name].untyped_storage()._cdata for name in original if name in named}
    tracer = Tracer(model, params, storages)
    tracer._mark(x, _Info(tuple(Axis() for _ in x.shape[2:]), 0))
    handles = []
    for module in tracer.names:
        handles.append(module.register_forward_pre_hook(tracer.pre_hook, with_kwargs=True))
        handles.append(module.register_forward_hook(tracer.post_hook, with_kwargs=True))
    recording = torch.autograd.graph.saved_tensors_hooks(tracer.pack, lambda t: t) if backward else torch.no_grad()
    try:
        with recording, tracer, _watching_mode() as watch:
            _forward(model, x, state)
            mode_matters = watch.read or not all(watch.sees(module) for module in tracer.names)
    finally:
        for handle in handles:
            handle.remove()
    tracer.mark_copies()
    saved = {"float": 0, "other": 0}
    steps = tracer.steps + [Step()]  # a tensor saved by an untraced last call is freed at the start
    for nbytes, is_float, first in tracer.saved.values():
        saved["float" if is_float else "other"] += nbytes
        if is_float:
            steps[first].frees_float += nbytes
        else:
            steps[first].frees_other += nbytes
    return Trace(tracer.rows, tracer.blocks, saved, steps, mode_matters)


class _ModeWatch:
    """Installed on nn.Module as a data descriptor for `training`, it notes every read of a
    module's flag (`if self.training:`, `F.dropout(x, p, self.training)`, batch norm) and
    otherwise reads and writes the instance's own value. A pass in which no module read its flag
    would run exactly the same in the other mode, so the summary can skip its inference pass
    (a model of convolutions, ReLUs, pooling and concatenations). Hand-written because torch
    offers no hook on the mode; modules it cannot watch count as reading (`sees`)."""

    def __init__(self):
        self.read = False

    def __get__(self, module, owner=None):
        if module is None:
            return self
        self.read = True
        try:
            return module.__dict__["training"]
        except KeyError:
            raise AttributeError("training") from None

    def __set__(self, module, value):
        module.__dict__["training"] = value

    def sees(self, module: nn.Module) -> bool:
        """False for a module whose mode may act unseen: a class with its own `train()` or its own
        `training` attribute. (TorchScript, which reads it in C++, is refused before tracing.)"""
        cls = type(module)
        return cls.train is nn.Module.train and getattr(cls, "training", None) is self


_ONE_WATCH = threading.RLock()  # nn.Module holds one watch at a time: passes in other threads wait


@contextlib.contextmanager
def _watching_mode():
    """A `_ModeWatch` on nn.Module for one pass. Another thread's modules read through it too (a
    read more only costs the inference pass); a nested pass's reads count for the outer one."""
    with _ONE_WATCH:
        previous = nn.Module.__dict__.get("training")
        watch = _ModeWatch()
        nn.Module.training = watch
        try:
            yield watch
        finally:
            if previous is None:
                del nn.Module.training
            else:
                nn.Module.training = previous
                previous.read = previous.read or watch.read


class _StandIns(TorchFunctionMode):
    """The tracer's own shape computations (`ops.computed_result`), without its bookkeeping:
    cheaper than torch's meta kernels for convolution, batch norm, pooling and concatenation."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        computed = computed_result(func, args, kwargs)
        if computed is None:
            return func(*args, **kwargs)
        return next(t for t in tensors_in((args, kwargs)) if t.is_floating_point()).new_empty(computed.shape)


def modules_that_run(model: nn.Module, x: torch.Tensor, state: dict[str, torch.Tensor] | None = None) -> dict[str, bool]:
    """{name: allocates} for every module a forward pass on the meta tensor `x` calls (in the
    model's current mode), untraced; `allocates` is False where a module returns one of its
    inputs or a view (dropout at inference). What the summary needs from its inference pass, at
    a fraction of a traced pass's cost. Raises where the pass fails (ShapeError, RuntimeError)."""
    names = {module: name for name, module in model.named_modules()}
    ran: dict[str, bool] = {}

    def record(module, args, output):
        inputs, outputs = tensors_in(args), tensors_in(output)
        with _UNTRACED():
            ran[names[module]] = bool(outputs) and all(outputs[0] is not t for t in inputs) and not outputs[0]._is_view()

    handles = [module.register_forward_hook(record) for module in names]
    try:
        with torch.no_grad(), _StandIns():
            _forward(model, x, state)
    finally:
        for handle in handles:
            handle.remove()
    return ran
