"""Is every backward right? Layer by layer, in float64, against two references:

- central finite differences, (f(a + h) − f(a − h)) / 2h, on a few sampled entries of each
  input and parameter (no other library involved);
- PyTorch autograd on the same weights, inputs and upstream gradient (torch is imported here, and
  only when a check runs: the engine itself never needs it).

Each layer is checked where the batch put it: one forward and backward pass of the whole model
records every layer's inputs and the gradient arriving at its output (dy); the layer is then run
alone on them, with f = Σ layer(inputs) · dy, whose gradient is exactly what its backward returns.
A last row checks the whole model: parameter gradients of the cross-entropy loss against the zoo's
torch model with the same weights (and the same dropout masks).

The difference reported is max |engine − reference| over an array divided by the array's largest
entry, and the largest over the layer's arrays: scaled by the gradient's size, so an entry that is
0 on one side and 1e-17 on the other does not count as 100% wrong.
"""

from __future__ import annotations

import copy
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from cnnlab.errors import CnnlabError
from cnnlab.scratch.graph import Container
from cnnlab.scratch.layers import Add, AvgPool2d, Conv2d, Dropout, Flatten, GlobalAvgPool2d, Layer, Linear, MaxPool2d
from cnnlab.scratch.layers import ReLU, Sigmoid, Softsign, Tanh, ZeroPadShortcut
from cnnlab.scratch.losses import softmax_cross_entropy
from cnnlab.scratch.norm import BatchNorm2d, LocalResponseNorm

H = 1e-5  # finite-difference step: truncation error ~h², rounding ~1e-16/h, both far below 1e-6 in float64
TORCH_TOLERANCE, NUMERIC_TOLERANCE = 1e-10, 1e-6
WHOLE_MODEL = "(whole model)"


@dataclass
class Row:
    layer: str  # dotted name, or WHOLE_MODEL
    kind: str  # the layer's class
    vs_numeric: float  # largest relative difference against finite differences
    vs_torch: float  # ... and against torch autograd
    compared: int  # sampled entries compared with finite differences
    kinks: int  # sampled entries skipped because they sit on a kink (ReLU at 0, a max-pool tie)

    @property
    def ok(self) -> bool:
        return self.vs_torch <= TORCH_TOLERANCE and self.vs_numeric <= NUMERIC_TOLERANCE


def difference(engine: np.ndarray, reference: np.ndarray) -> float:
    """max |engine − reference| / the largest |entry| of either (0 when both are all zero)."""
    scale = max(np.abs(reference).max(initial=0.0), np.abs(engine).max(initial=0.0))
    return float(np.abs(engine - reference).max(initial=0.0) / scale) if scale else 0.0


@contextmanager
def recording(model: Container):
    """While active, every leaf layer's forward saves a copy of the layer as the batch found it and
    its inputs, and its backward saves dy: what a layer-by-layer check needs to replay it alone."""
    seen = {}
    for path, layer in model.leaves():
        record = seen[path] = {}

        def forward(*inputs, layer=layer, record=record):
            snapshot = copy.deepcopy(layer)
            del snapshot.forward, snapshot.backward  # the copy runs the layer's own methods, unrecorded
            record["layer"], record["inputs"] = snapshot, inputs
            return type(layer).forward(layer, *inputs)

        def backward(dout, layer=layer, record=record):
            record["dy"] = dout
            return type(layer).backward(layer, dout)

        layer.forward, layer.backward = forward, backward
    try:
        yield seen
    finally:
        for _, layer in model.leaves():
            del layer.forward, layer.backward


def _sample(gradient: np.ndarray, count: int, rng: np.random.Generator) -> list[tuple]:
    """Up to `count` entries: half anywhere, half where the gradient is not zero (where a wrong
    backward shows), without repeats."""
    flat = np.flatnonzero(gradient)
    picks = set(rng.choice(gradient.size, min(count - count // 2, gradient.size), replace=False).tolist())
    if flat.size:
        picks |= set(rng.choice(flat, min(count // 2, flat.size), replace=False).tolist())
    return [np.unravel_index(i, gradient.shape) for i in sorted(picks)]


def numeric_check(f, arrays: dict[str, np.ndarray], analytic: dict[str, np.ndarray], samples: int, rng) -> tuple[float, int, int]:
    """Central differences D(h) = (f(a + h) − f(a − h)) / 2h of the scalar f() for sampled entries of
    each array (changed in place and restored), against the analytic gradient.

    Near a kink (ReLU at 0, a max-pool tie) there is no derivative and D(h) means nothing. In a
    deep network a step of h moves thousands of units and some cross zero, so such entries are
    found and skipped (counted): where the slopes left and right of a disagree, or where D(h) and
    D(2h) disagree by more than the tolerance (for a smooth f they differ by O(h²)).
    Returns (largest relative difference, entries compared, entries skipped as kinks)."""
    base, worst, compared, kinks = f(), 0.0, 0, 0

    def at(array, index, value):
        kept = array[index]
        array[index] = value
        try:
            return f()
        finally:
            array[index] = kept

    for name, array in arrays.items():
        scale = np.abs(analytic[name]).max(initial=0.0) or 1.0
        for index in _sample(analytic[name], samples, rng):
            a = array[index]
            up, down, up2, down2 = (at(array, index, a + step) for step in (H, -H, 2 * H, -2 * H))
            central, wide = (up - down) / (2 * H), (up2 - down2) / (4 * H)
            right, left = (up - base) / H, (base - down) / H
            if abs(right - left) > 1e-3 * (abs(right) + abs(left)) + NUMERIC_TOLERANCE * scale \
                    or abs(central - wide) > NUMERIC_TOLERANCE * scale:
                kinks += 1
                continue
            compared += 1
            worst = max(worst, abs(central - analytic[name][index]) / scale)
    return worst, compared, kinks


def _torch_forward(layer: Layer):
    """The torch twin of a scratch layer: a function of (inputs..., **parameters) -> output."""
    import torch
    import torch.nn.functional as F

    def lrn(x):
        before = layer.size // 2  # both formulas' windows start ⌊n/2⌋ below; the paper's ends ⌊n/2⌋ above
        size = layer.size if layer.formula == "torch" else 2 * before + 1
        alpha = layer.alpha if layer.formula == "torch" else layer.alpha * size
        return F.local_response_norm(x, size, alpha, layer.beta, layer.k)

    match layer:
        case Conv2d():
            return lambda x, weight, bias=None: F.conv2d(x, weight, bias, layer.stride, layer.padding)
        case Linear():
            return F.linear
        case BatchNorm2d() if layer.training:
            return lambda x, weight, bias: F.batch_norm(x, None, None, weight, bias, True, eps=layer.eps)
        case BatchNorm2d():
            mean, var = (torch.tensor(b.data) for b in (layer.running_mean, layer.running_var))
            return lambda x, weight, bias: F.batch_norm(x, mean, var, weight, bias, False, eps=layer.eps)
        case MaxPool2d():
            return lambda x: F.max_pool2d(x, layer.kernel_size, layer.stride, layer.padding, ceil_mode=layer.ceil_mode)
        case AvgPool2d():
            return lambda x: F.avg_pool2d(x, layer.kernel_size, layer.stride, layer.padding, ceil_mode=layer.ceil_mode)
        case GlobalAvgPool2d():
            return lambda x: F.adaptive_avg_pool2d(x, 1)
        case Dropout():  # the engine's own mask (torch's generator draws different ones)
            return lambda x: x if layer._mask is None else x * torch.tensor(layer._mask)
        case LocalResponseNorm():
            return lrn
        case ZeroPadShortcut():
            return lambda x: F.pad(x[:, :, :: layer.stride, :: layer.stride], (0, 0, 0, 0, 0, layer.extra_channels))
        case Add():
            return torch.add
        case Flatten():
            return lambda x: torch.flatten(x, 1)
        case ReLU():
            return F.relu
        case Sigmoid():
            return torch.sigmoid
        case Tanh():
            return torch.tanh
        case Softsign():
            return F.softsign
    raise CnnlabError(f"no torch twin for {type(layer).__name__}: gradcheck cannot compare it with autograd")


def check_layer(record: dict, samples: int, rng) -> tuple[float, float, int, int]:
    """One layer alone on its recorded inputs and dy: (vs finite differences, vs torch, compared, kinks)."""
    import torch

    snapshot, inputs, dy = record["layer"], [np.array(x) for x in record["inputs"]], record["dy"]
    snapshot.input_grad = True  # a network's first layer skips dL/dx in training; here we want it

    probe = copy.deepcopy(snapshot)
    y = probe.forward(*inputs)
    input_grads = probe.backward(dy)
    input_grads = input_grads if isinstance(input_grads, tuple) else (input_grads,)
    analytic = {**{f"input{i}": g for i, g in enumerate(input_grads)}, **{k: p.grad for k, p in probe.parameters().items()}}

    def f():  # a fresh copy every time: dropout draws the same mask, batch norm starts from the same statistics
        return float((copy.deepcopy(snapshot).forward(*inputs) * dy).sum())

    arrays = {**{f"input{i}": x for i, x in enumerate(inputs)}, **{k: p.data for k, p in snapshot.parameters().items()}}
    vs_numeric, compared, kinks = numeric_check(f, arrays, analytic, samples, rng)

    tensors = {name: torch.tensor(a, requires_grad=True) for name, a in arrays.items()}
    output = _torch_forward(probe)(*(tensors[f"input{i}"] for i in range(len(inputs))),
                                   **{k: tensors[k] for k in probe.parameters()})
    output.backward(torch.tensor(dy))
    vs_torch = max([difference(y, output.detach().numpy())]
                   + [difference(analytic[name], t.grad.numpy()) for name, t in tensors.items()])
    return vs_numeric, vs_torch, compared, kinks


def check_model(model: Container, zoo_name: str, zoo_kwargs: dict, x: np.ndarray, y: np.ndarray,
                samples: int = 6, seed: int = 0) -> list[Row]:
    """Every layer of `model` (cast to float64, in the mode it is in), then the whole model against
    the zoo's torch `zoo_name` built with `zoo_kwargs`, on batch (x, y)."""
    rng, x = np.random.default_rng(seed), np.asarray(x, np.float64)
    model.astype(np.float64)  # in float32, rounding (1e-7) would drown what finite differences measure
    before = copy.deepcopy(model)  # the model as the batch found it: weights, running statistics, dropout generators
    with recording(model) as seen:
        loss, dlogits = softmax_cross_entropy(model(x), y)
        model.backward(dlogits)
    rows = []
    for path, layer in model.leaves():
        rows.append(Row(path, type(layer).__name__, *check_layer(seen[path], samples, rng)))

    def model_loss():
        return softmax_cross_entropy(copy.deepcopy(before)(x), y)[0]

    params = before.parameters()  # two entries of every parameter array, each costing four forward passes
    analytic = {name: p.grad for name, p in model.parameters().items()}
    vs_numeric, compared, kinks = numeric_check(model_loss, {name: p.data for name, p in params.items()}, analytic, 2, rng)
    masks = {path: layer._mask for path, layer in model.leaves() if isinstance(layer, Dropout)}
    vs_torch = _torch_model_difference(zoo_name, zoo_kwargs, before, model, masks, x, y, loss)
    rows.append(Row(WHOLE_MODEL, zoo_name, vs_numeric, vs_torch, compared, kinks))
    return rows


def _torch_model_difference(zoo_name, zoo_kwargs, before, after, masks, x, y, loss) -> float:
    """The zoo's torch model with the weights the batch found, the same dropout masks, one
    forward and backward: the largest difference of loss, parameter gradients and updated buffers."""
    import torch
    import torch.nn.functional as F

    from cnnlab.models import create

    reference = create(zoo_name, **zoo_kwargs).double().train(after.training)
    reference.load_state_dict({k: torch.tensor(v) for k, v in before.state_dict().items()})
    modules = dict(reference.named_modules())
    for path, mask in masks.items():
        if mask is not None:
            modules[path].register_forward_hook(lambda m, inputs, out, mask=mask: inputs[0] * torch.tensor(mask))
    torch_loss = F.cross_entropy(reference(torch.tensor(x)), torch.tensor(y))
    torch_loss.backward()
    grads = {name: p.grad.numpy() for name, p in reference.named_parameters()}
    buffers = {name: b.numpy() for name, b in reference.named_buffers()}
    engine = after.state_dict()
    return max([abs(loss - torch_loss.item()) / abs(torch_loss.item())]
               + [difference(p.grad, grads[name]) for name, p in after.parameters().items()]
               + [difference(engine[name].astype(np.float64), value.astype(np.float64)) for name, value in buffers.items()])
