"""What one torch call costs and does to geometry: MACs, other ops, sliding windows.

The tracer sees every torch function a forward pass calls (inside `nn.Module` leaves and in
plain `forward` code alike) and asks this module about it, so a convolution is counted the
same whether it arrives as `nn.Conv2d`, `F.conv2d` or inside a custom layer.

The op table: `@describes(torch_function_or_op_name, ...)` registers how an op is counted; a new
op (a deformable convolution, say) joins the analyzer with one such function.

Counting rules (per output, batch included; the analyzer divides by the batch):
- MACs: convolution = out · (C_in/groups) · k_h · k_w; linear / matmul = out · K. Bias adds are
  not counted (as torchvision, fvcore and the papers do). A dilated convolution costs what the
  undilated one does (the same taps, spread out); only its window's span, d·(k − 1) + 1, grows.
- deformable convolution (torchvision's `deform_conv2d`): the MACs of the convolution with the same
  kernel, plus other ops of 4 per bilinear sample (C_in · k_h · k_w samples per output position; one
  more per sample for a modulation mask). Its offsets come from an ordinary convolution, counted as
  one (in `cnnlab.models.layers.DeformableConv2d` both land in the layer's one row). Its receptive
  field is the *nominal* one, the regular grid's, and is marked so: learned offsets can reach any
  distance, so no finite field is exact. Field and depth follow its input, not the offsets (the
  offset branch is the layer's own, not a layer on the path).
- other ops: pooling = out · window area (adaptive pooling: every input once); activations and
  elementwise arithmetic (ReLU, +, ×, sigmoid …) = out; batch/layer/group norm = 2 · out (one
  scale and one shift per value at inference); LRN = out · (size + 4) (squares summed over the
  neighbours, then scale, add, power, divide). Reshapes, concatenation, dropout, padding: 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from cnnlab.analysis.geometry import Window


@dataclass
class Call:
    """One torch call as the analyzer sees it."""

    name: str  # short op name: conv2d, max_pool2d, add, flatten ...
    macs: int = 0
    other: int = 0
    windows: tuple[Window, ...] = ()  # one per spatial axis, for convolution and pooling
    adaptive: tuple[int, ...] = ()  # output size per spatial axis, for adaptive pooling
    units: int | None = None  # filters of a convolution, neurons of a linear layer
    groups: int = 1
    nominal_field: bool = False  # the field follows the first input's regular grid only (deformable)
    note: str = ""  # a flag for the row, e.g. that its receptive field is nominal
    gather: bool = False  # copies values picked by an index tensor (x[:, idx], index_select)


_CONV = {torch.conv1d: "conv1d", torch.conv2d: "conv2d", torch.conv3d: "conv3d"}
_MAX_POOL = {
    F.max_pool1d: "max_pool1d", F.max_pool2d: "max_pool2d", F.max_pool3d: "max_pool3d",
    torch.max_pool1d: "max_pool1d", torch.max_pool2d: "max_pool2d", torch.max_pool3d: "max_pool3d",
    F.max_pool2d_with_indices: "max_pool2d", F.max_pool1d_with_indices: "max_pool1d",
}
_AVG_POOL = {F.avg_pool1d: "avg_pool1d", F.avg_pool2d: "avg_pool2d", F.avg_pool3d: "avg_pool3d"}
_ADAPTIVE = {
    F.adaptive_avg_pool1d: "adaptive_avg_pool1d", F.adaptive_avg_pool2d: "adaptive_avg_pool2d",
    F.adaptive_avg_pool3d: "adaptive_avg_pool3d", F.adaptive_max_pool1d: "adaptive_max_pool1d",
    F.adaptive_max_pool2d: "adaptive_max_pool2d", F.adaptive_max_pool3d: "adaptive_max_pool3d",
}
_MATMUL = {"linear", "matmul", "mm", "bmm", "addmm", "baddbmm"}
_NORM = {"batch_norm", "layer_norm", "group_norm", "instance_norm"}
_ELEMENTWISE = {
    "add", "sub", "mul", "div", "truediv", "relu", "relu6", "sigmoid", "tanh", "hardtanh",
    "leaky_relu", "elu", "selu", "gelu", "silu", "mish", "softplus", "hardsigmoid", "hardswish",
    "softmax", "log_softmax", "exp", "log", "sqrt", "rsqrt", "pow", "neg", "abs", "threshold",
    "clamp", "maximum", "minimum", "rsub",
}


def op_name(func) -> str:
    """A readable name: `Tensor.__iadd__` → add, `torch.relu_` → relu, F.max_pool2d → max_pool2d."""
    for table in (_CONV, _MAX_POOL, _AVG_POOL, _ADAPTIVE):
        if func in table:
            return table[func]
    name = getattr(func, "__name__", str(func))
    if name.startswith("__") and name.endswith("__"):
        name = name[2:-2]
        if name[:1] in "ir" and name[1:] in _ELEMENTWISE:
            name = name[1:]
    return name.strip("_")


def _bind(args, kwargs, names, defaults):
    values = dict(defaults)
    values.update(zip(names, args))
    values.update(kwargs)
    return values


def _per_axis(value, n: int) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * n
    value = tuple(value)
    return value * n if len(value) == 1 else value


def _conv_windows(args, kwargs):
    a = _bind(args, kwargs, ["input", "weight", "bias", "stride", "padding", "dilation", "groups"],
              {"bias": None, "stride": 1, "padding": 0, "dilation": 1, "groups": 1})
    kernel = tuple(a["weight"].shape[2:])
    n = len(kernel)
    stride, dilation = _per_axis(a["stride"], n), _per_axis(a["dilation"], n)
    padding = 0 if a["padding"] == "valid" else a["padding"]
    if padding == "same":
        totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
        windows = tuple(
            Window(k, s, t // 2, d, padding_right=t - t // 2 if t % 2 else None)
            for k, s, d, t in zip(kernel, stride, dilation, totals)
        )
    else:
        windows = tuple(Window(k, s, p, d) for k, s, p, d in zip(kernel, stride, _per_axis(padding, n), dilation))
    return a, windows


_DEFORM_ARGS = ["input", "weight", "offset", "mask", "bias", "stride_h", "stride_w", "pad_h", "pad_w",
                "dilation_h", "dilation_w", "groups", "offset_groups", "use_mask"]
NOMINAL_FIELD = "receptive field nominal (deformable: learned offsets move the samples)"


def _is_deform(func) -> bool:
    """torchvision's deformable convolution op (torch.ops.torchvision.deform_conv2d)."""
    return getattr(func, "__name__", "") == "deform_conv2d" and "torchvision" in str(func)


def _deform_windows(args, kwargs):
    a = _bind(args, kwargs, _DEFORM_ARGS, {})
    kernel = tuple(a["weight"].shape[2:])
    windows = tuple(Window(k, a[f"stride_{axis}"], a[f"pad_{axis}"], a[f"dilation_{axis}"])
                    for k, axis in zip(kernel, "hw"))
    return a, windows


def _deform_call(args, kwargs, out: torch.Tensor) -> Call:
    a, windows = _deform_windows(args, kwargs)
    weight = a["weight"]
    taps = math.prod(weight.shape[2:])
    samples = out.shape[0] * math.prod(out.shape[2:]) * a["input"].shape[1] * taps
    return Call("deform_conv2d", macs=out.numel() * weight.shape[1] * taps,
                other=samples * (5 if a["use_mask"] else 4), windows=windows, units=weight.shape[0],
                groups=a["groups"], nominal_field=True, note=NOMINAL_FIELD)


def _pool_windows(args, kwargs, is_max):
    names = ["input", "kernel_size", "stride", "padding"] + (["dilation"] if is_max else []) + ["ceil_mode"]
    a = _bind(args, kwargs, names, {"stride": None, "padding": 0, "dilation": 1, "ceil_mode": False})
    n = a["input"].dim() - 2
    kernel = _per_axis(a["kernel_size"], n)
    stride = _per_axis(a["stride"], n) if a["stride"] not in (None, [], ()) else kernel
    return tuple(
        Window(k, s, p, d, ceil_mode=bool(a["ceil_mode"]))
        for k, s, p, d in zip(kernel, stride, _per_axis(a["padding"], n), _per_axis(a["dilation"], n))
    )


def _slice_windows(x: torch.Tensor, index) -> tuple[Window, ...]:
    """x[:, :, ::2, ::2] subsamples like a 1×1 window with stride 2 (ResNet's option-A shortcut)."""
    index = index if isinstance(index, tuple) else (index,)
    spatial = x.dim() - 2
    if len(index) != x.dim() or not all(isinstance(i, slice) for i in index):
        return ()
    windows = tuple(Window(1, i.step or 1, padding=-(i.start or 0)) for i in index[-spatial:])
    return windows if any(w != Window(1) for w in windows) else ()


def _pad_windows(x: torch.Tensor, pad) -> tuple[Window, ...]:
    """F.pad's (left, right, top, bottom, …) list, last axis first, as 1×1 windows with padding."""
    spatial = x.dim() - 2
    pairs = [tuple(pad[2 * i : 2 * i + 2]) for i in range(len(pad) // 2)][::-1]  # first axis first
    pairs = [(0, 0)] * (x.dim() - len(pairs)) + pairs
    windows = tuple(Window(1, 1, left, padding_right=right if right != left else None) for left, right in pairs[-spatial:])
    return windows if any(w != Window(1) for w in windows) else ()


Describer = Callable[[str, tuple, dict, list, torch.Tensor], Call]
_BY_FUNCTION: dict[object, Describer] = {}
_BY_NAME: dict[str, Describer] = {}


def describes(*keys):
    """Register `describer(name, args, kwargs, inputs, out) -> Call` for torch functions (keys that
    are objects) or op names as `op_name` gives them (keys that are strings)."""

    def register(describer: Describer) -> Describer:
        for key in keys:
            (_BY_NAME if isinstance(key, str) else _BY_FUNCTION)[key] = describer
        return describer

    return register


def describe(func, args, kwargs, inputs: list[torch.Tensor], out: torch.Tensor) -> Call:
    """Classify a call whose first tensor result is `out` and whose traced inputs are `inputs`."""
    name = op_name(func)
    if _is_deform(func):
        return _deform_call(args, kwargs, out)
    describer = _BY_FUNCTION.get(func) or _BY_NAME.get(name)
    return describer(name, args, kwargs, inputs, out) if describer is not None else Call(name)


@describes(*_CONV)
def _convolution(name, args, kwargs, inputs, out) -> Call:
    a, windows = _conv_windows(args, kwargs)
    weight = a["weight"]
    macs = out.numel() * weight.shape[1] * math.prod(weight.shape[2:])
    return Call(name, macs=macs, windows=windows, units=weight.shape[0], groups=a["groups"])


@describes(*_MAX_POOL, *_AVG_POOL)
def _pooling(name, args, kwargs, inputs, out) -> Call:
    windows = _pool_windows(args, kwargs, "max" in name)
    return Call(name, other=out.numel() * math.prod(w.kernel for w in windows), windows=windows)


@describes(*_ADAPTIVE)
def _adaptive_pooling(name, args, kwargs, inputs, out) -> Call:
    n = inputs[0].dim() - 2
    return Call(name, other=inputs[0].numel(), adaptive=tuple(out.shape[-n:]))


@describes(*_MATMUL)
def _matrix_product(name, args, kwargs, inputs, out) -> Call:
    operand = args[1] if name in ("addmm", "baddbmm") else args[0]
    call = Call(name, macs=out.numel() * operand.shape[-1])
    if name == "linear":
        call.units = (args[1] if len(args) > 1 else kwargs["weight"]).shape[0]
    return call


@describes("getitem")
def _indexing(name, args, kwargs, inputs, out) -> Call:
    index = args[1] if isinstance(args[1], tuple) else (args[1],)
    if any(isinstance(i, list) or isinstance(i, torch.Tensor) and i.dtype != torch.bool for i in index):
        return Call(name, gather=True)
    return Call(name, windows=_slice_windows(inputs[0], args[1]))


@describes("index_select", "gather", "take", "take_along_dim")
def _gathering(name, args, kwargs, inputs, out) -> Call:
    return Call(name, gather=True)


@describes("pad")
def _padding(name, args, kwargs, inputs, out) -> Call:
    return Call(name, windows=_pad_windows(inputs[0], args[1] if len(args) > 1 else kwargs["pad"]))


@describes(*_NORM)
def _normalisation(name, args, kwargs, inputs, out) -> Call:
    return Call(name, other=2 * out.numel())


@describes("local_response_norm")
def _local_response_norm(name, args, kwargs, inputs, out) -> Call:
    size = args[1] if len(args) > 1 else kwargs["size"]
    return Call(name, other=out.numel() * (size + 4))


@describes(*_ELEMENTWISE)
def _elementwise(name, args, kwargs, inputs, out) -> Call:
    return Call(name, other=out.numel())


class ShapeError(Exception):
    """An input a layer cannot take (wrong channel or feature count), in words."""


class EmptyOutput(ShapeError):
    """A convolution or pooling whose output would be empty: 'H×W → 0×…'."""


@dataclass(frozen=True)
class Result:
    """An output shape computed here, and what autograd would keep for backward besides weights."""

    shape: tuple[int, ...]
    saves: str = "input"  # "input" (its first), "operands" (those whose partner needs a gradient), "output", "nothing"
    extra: tuple[tuple[tuple[int, ...], torch.dtype], ...] = ()  # e.g. max-pool indices, dropout mask


_ARITHMETIC = {"add", "__add__", "__radd__", "sub", "__sub__", "__rsub__", "rsub", "mul", "__mul__", "__rmul__"}
_KEEP_OUTPUT = {"relu", "tanh", "sigmoid"}  # out of place; their backward reads their result


def computed_result(func, args, kwargs) -> Result | None:
    """Convolution, linear, batch norm, LRN, pooling, dropout, concatenation, ReLU/tanh/sigmoid and
    + − × computed here, not by torch's meta kernels: their `torch._check` imports torch.fx's
    symbolic shapes and some import torch._dynamo on first use (seconds of a cold start); batch
    norm's is a slow Python decomposition (~20 ms), concatenation's ~5 ms, ReLU's and the
    arithmetic's ~1 ms a call."""
    x = args[0] if args else kwargs.get("input")
    if func in _CONV:
        a, windows = _conv_windows(args, kwargs)
        out_sizes = _outputs(windows, x)  # an empty output is named before a channel mismatch
        weight, groups = a["weight"], a["groups"]
        if x.shape[1] != weight.shape[1] * groups:
            raise ShapeError(f"expects {weight.shape[1] * groups} input channels, gets {x.shape[1]}")
        return Result((x.shape[0], weight.shape[0], *out_sizes))
    if func is F.linear:
        weight = args[1] if len(args) > 1 else kwargs["weight"]
        if x.shape[-1] != weight.shape[1]:
            raise ShapeError(f"expects {weight.shape[1]} input features, gets {x.shape[-1]}")
        return Result((*x.shape[:-1], weight.shape[0]))
    if func is F.batch_norm:
        return Result(tuple(x.shape))
    if func in _MAX_POOL or func in _AVG_POOL:
        windows = _pool_windows(args, kwargs, func in _MAX_POOL)
        shape = (*x.shape[: x.dim() - len(windows)], *_outputs(windows, x))
        return Result(shape, extra=((shape, torch.int64),) if func in _MAX_POOL else ())
    if func in _ADAPTIVE:
        n = int(_ADAPTIVE[func][-2])
        size = args[1] if len(args) > 1 else kwargs["output_size"]
        wanted = _per_axis(size, n) if not isinstance(size, int) else (size,) * n
        shape = (*x.shape[:-n], *(s if o is None else o for o, s in zip(wanted, x.shape[-n:])))
        return Result(shape, extra=((shape, torch.int64),) if "max" in _ADAPTIVE[func] else ())
    name = getattr(func, "__name__", "")
    if name in _ARITHMETIC and not kwargs:
        tensors = [t for t in args if isinstance(t, torch.Tensor)]
        if len({t.dtype for t in tensors}) == 1 and tensors[0].is_floating_point():
            # + and − keep nothing for backward (the residual `+`); x·y keeps the operands, x·2 nothing
            product = "mul" in name and len(tensors) == 2
            return Result(tuple(torch.broadcast_shapes(*(t.shape for t in tensors))),
                          saves="operands" if product else "nothing")
    if func is torch.cat and all(isinstance(t, torch.Tensor) for t in (args[0] if args else kwargs["tensors"])):
        tensors = list(args[0] if args else kwargs["tensors"])
        dim = (args[1] if len(args) > 1 else kwargs.get("dim", 0)) % tensors[0].dim()
        shape = list(tensors[0].shape)
        shape[dim] = sum(t.shape[dim] for t in tensors)
        if len({t.dtype for t in tensors}) == 1 and all(t.dim() == len(shape) for t in tensors):
            return Result(tuple(shape), saves="nothing")  # its backward only needs the sizes
    if (name in _KEEP_OUTPUT and isinstance(x, torch.Tensor) and x.is_floating_point() and "out" not in kwargs
            and not (args[1:2] or [kwargs.get("inplace", False)])[0]):
        return Result(tuple(x.shape), saves="output")
    if func is F.local_response_norm and x.dim() == 4:
        # F.local_response_norm's decomposition keeps x, x² zero-padded across channels (for its
        # average pool), k + α·mean and its power β (for the division): the same storages here
        n, c, h, w = x.shape
        size = args[1] if len(args) > 1 else kwargs["size"]
        return Result(tuple(x.shape), extra=(((n, 1, c + size - 1, h, w), x.dtype), (tuple(x.shape), x.dtype),
                                             (tuple(x.shape), x.dtype)))
    if func is F.dropout:
        training = args[2] if len(args) > 2 else kwargs.get("training", True)
        inplace = args[3] if len(args) > 3 else kwargs.get("inplace", False)
        if training and not inplace:
            return Result(tuple(x.shape), saves="nothing", extra=((tuple(x.shape), torch.bool),))
    return None


def _outputs(windows, x) -> tuple[int, ...]:
    """Output sizes of `windows` sliding over `x`'s last axes; EmptyOutput where one would be empty."""
    sizes = tuple(x.shape[x.dim() - len(windows):])
    outs = tuple(w.output(s) for w, s in zip(windows, sizes))
    if min(outs) <= 0:
        raise EmptyOutput(f"{'×'.join(map(str, sizes))} → {'×'.join(str(max(o, 0)) for o in outs)}")
    return outs
