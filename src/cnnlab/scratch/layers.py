"""Layers with a forward and a hand-written backward.

Every layer follows one contract: `forward(x)` returns y and remembers what the backward pass
needs; `backward(dy)` takes dL/dy, stores dL/dθ in each `Parameter.grad` and returns dL/dx (a
tuple of gradients for a layer with several inputs, such as `Add`).
Conventions (shapes, initialisation, parameter and buffer names) follow torch.nn, so weights move
between the two engines unchanged. Normalisation layers are in `norm.py`, containers in `graph.py`.
"""

from __future__ import annotations

import numpy as np

from cnnlab.errors import CnnlabError
from cnnlab.scratch import conv


class Buffer:
    """State saved and loaded with the weights but not trained (batch norm's running statistics)."""

    def __init__(self, data: np.ndarray):
        self.data = data


class Parameter(Buffer):
    """A trainable array and the gradient the last backward pass left for it."""

    def __init__(self, data: np.ndarray):
        super().__init__(data)
        self.grad = np.zeros_like(data)


class Layer:
    training = True
    input_grad = True  # False: backward skips dL/dx and returns None (a network's first layer, fed the data)

    def __call__(self, *inputs: np.ndarray) -> np.ndarray:
        return self.forward(*inputs)

    def state(self) -> dict[str, Buffer]:
        """Parameters and buffers under their state-dict names, in torch's order."""
        return {name: value for name, value in vars(self).items() if isinstance(value, Buffer)}

    def parameters(self) -> dict[str, Parameter]:
        return {name: value for name, value in self.state().items() if isinstance(value, Parameter)}

    def state_dict(self) -> dict[str, np.ndarray]:
        return {name: entry.data.copy() for name, entry in self.state().items()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Copy arrays in by name; names and shapes must match exactly (no silent partial loads)."""
        entries = self.state()
        missing, unexpected = sorted(set(entries) - set(state)), sorted(set(state) - set(entries))
        if missing or unexpected:
            raise KeyError(f"state does not match the model: missing {missing}, unexpected {unexpected}")
        for name, entry in entries.items():
            if entry.data.shape != tuple(state[name].shape):
                raise ValueError(f"{name}: model has shape {entry.data.shape}, state has {tuple(state[name].shape)}")
            entry.data = np.array(state[name], dtype=entry.data.dtype)

    def astype(self, dtype):
        """Cast every floating-point array (float64 for gradient checks, float32 to train)."""
        for entry in self.state().values():
            if np.issubdtype(entry.data.dtype, np.floating):
                entry.data = entry.data.astype(dtype)
                if isinstance(entry, Parameter):
                    entry.grad = entry.grad.astype(dtype)
        return self

    def train(self, mode: bool = True):
        """Training mode on (Dropout drops, BatchNorm uses batch statistics) or off."""
        self.training = mode
        return self

    def eval(self):
        return self.train(False)

    def __repr__(self) -> str:
        shown = {k: v for k, v in vars(self).items()
                 if isinstance(v, (bool, int, float, str)) and k[0] != "_" and k not in ("training", "input_grad")}
        return f"{type(self).__name__}({', '.join(f'{k}={v}' for k, v in shown.items())})"


def expect_shape(x: np.ndarray, ndim: int, axis: int, size: int, what: str) -> None:
    """One line naming the shape a layer takes, instead of a broadcasting error deep inside NumPy."""
    if x.ndim != ndim or x.shape[axis] != size:
        raise CnnlabError(f"{what} cannot take input of shape {'×'.join(map(str, x.shape))}")


def _uniform_init(rng: np.random.Generator, shape: tuple, fan_in: int) -> Parameter:
    """U(-1/√fan_in, 1/√fan_in): torch.nn's default for Conv2d and Linear weights and biases."""
    bound = 1.0 / np.sqrt(fan_in)
    return Parameter(rng.uniform(-bound, bound, size=shape).astype(np.float32))


class Conv2d(Layer):
    """2-D convolution. `method="im2col"` (fast: one matrix multiply) or `"naive"` (the notes'
    formula pixel by pixel, input gradient by full convolution with 180°-rotated kernels).
    A 1×1 convolution needs no special case: its im2col matrix is the input itself, reshaped."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True, method="im2col",
                 input_grad=True, rng=None):
        if method not in ("im2col", "naive"):
            raise ValueError(f"method must be 'im2col' or 'naive', not {method!r}")
        rng = np.random.default_rng(rng)
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.stride, self.padding, self.method, self.input_grad = stride, padding, method, input_grad
        fan_in = in_channels * kernel_size * kernel_size
        self.weight = _uniform_init(rng, (out_channels, in_channels, kernel_size, kernel_size), fan_in)
        self.bias = _uniform_init(rng, (out_channels,), fan_in) if bias else None

    def forward(self, x):
        k, s, p = self.kernel_size, self.stride, self.padding
        if x.ndim != 4 or x.shape[1] != self.in_channels or min(x.shape[2:]) + 2 * p < k:
            raise CnnlabError(f"Conv2d({self.in_channels}→{self.out_channels}, {k}×{k}, padding {p}) takes "
                              f"N×{self.in_channels}×H×W input with H, W ≥ {k - 2 * p}, not {'×'.join(map(str, x.shape))}")
        self._x, w = x, self.weight.data
        if self.method == "naive":
            b = self.bias.data if self.bias is not None else np.zeros(self.out_channels, w.dtype)
            return conv.conv2d_naive(x, w, b, s, p)
        xp = conv.pad(x, p)
        self._padded_shape, self._cols = xp.shape, conv.im2col(xp, k, k, s)
        n, oh, ow = x.shape[0], (xp.shape[2] - k) // s + 1, (xp.shape[3] - k) // s + 1
        out = w.reshape(self.out_channels, -1) @ self._cols  # O × (N·OH·OW)
        if self.bias is not None:
            out += self.bias.data[:, None]
        # the channel-major memory (O, N, OH, OW) is kept: the next convolution's im2col reads it row by row
        return out.reshape(self.out_channels, n, oh, ow).transpose(1, 0, 2, 3)

    def backward(self, dout):
        x, w, k, s, p = self._x, self.weight.data, self.kernel_size, self.stride, self.padding
        if self.bias is not None:
            self.bias.grad = dout.sum(axis=(0, 2, 3))
        if self.method == "naive":
            self.weight.grad = conv.conv2d_weight_grad_naive(x, dout, (k, k), s, p)
            return conv.conv2d_input_grad_rotated(dout, w, x.shape, s, p) if self.input_grad else None
        d2 = dout.transpose(1, 0, 2, 3).reshape(self.out_channels, -1)  # one column per output pixel
        self.weight.grad = (d2 @ self._cols.T).reshape(w.shape)
        if not self.input_grad:
            return None
        dxp = conv.col2im(w.reshape(self.out_channels, -1).T @ d2, self._padded_shape, k, k, s)
        return dxp[:, :, p : p + x.shape[2], p : p + x.shape[3]]


class _Pool2d(Layer):
    """What max and average pooling share: the windows, torch's ceil_mode, and undoing the padding."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False):
        self.kernel_size, self.stride, self.padding, self.ceil_mode = kernel_size, stride or kernel_size, padding, ceil_mode

    def _output_size(self, size: int) -> int:
        """torch's rule: ⌊(size + 2p − k)/s⌋ + 1, or with ceil_mode the ceiling, as long as the last
        window still starts inside the image or its left padding (Caffe's NIN and GoogLeNet pool so)."""
        k, s, p = self.kernel_size, self.stride, self.padding
        if not self.ceil_mode:
            return (size + 2 * p - k) // s + 1
        out = -(-(size + 2 * p - k) // s) + 1
        return out - 1 if (out - 1) * s >= size + p else out

    def _overhang(self, size: int) -> int:
        """Rows (or columns) past the padding that ceil_mode's last window reaches."""
        return max((self._output_size(size) - 1) * self.stride + self.kernel_size - (size + 2 * self.padding), 0)

    def _windows(self, x, pad_value):
        """The k×k×N×C×OH×OW windows of x padded by p on every side (and by the overhang)."""
        p = self.padding
        if x.ndim != 4 or min(x.shape[2:]) + 2 * p < self.kernel_size:
            raise CnnlabError(f"{type(self).__name__}({self.kernel_size}, padding {p}) takes N×C×H×W input with "
                              f"H, W ≥ {self.kernel_size - 2 * p}, not {'×'.join(map(str, x.shape))}")
        h, w = x.shape[2:]
        xp = np.pad(x, ((0, 0), (0, 0), (p, p + self._overhang(h)), (p, p + self._overhang(w))), constant_values=pad_value)
        self._x_shape, self._padded_shape = x.shape, xp.shape
        return conv.windows(xp, self.kernel_size, self.kernel_size, self.stride)

    def _unpad(self, grad_padded):
        p, (h, w) = self.padding, self._x_shape[2:]
        return grad_padded[:, :, p : p + h, p : p + w]


class MaxPool2d(_Pool2d):
    """Max over each window; the "switches" remember which input won, and only it gets gradient
    (on a tie the first in reading order, as torch). Padding is −∞: it never wins."""

    def forward(self, x):
        win = self._windows(x, -np.inf)
        candidates = win.reshape(-1, *win.shape[2:])  # k·k candidates for every output pixel
        best = candidates.max(axis=0)
        # one boolean map per kernel position: "this one won". A loop over the k·k positions is 10×
        # faster than argmax along the first axis, which NumPy does not vectorise.
        self._won, taken = np.empty(candidates.shape, bool), np.zeros(best.shape, bool)
        for i, candidate in enumerate(candidates):
            np.logical_and(candidate == best, ~taken, out=self._won[i])
            taken |= self._won[i]
        return best

    @property
    def switches(self) -> np.ndarray:
        """Which of the k·k inputs of every window won (row-major index), N×C×OH×OW."""
        return self._won.argmax(axis=0)

    def backward(self, dout):
        k = self.kernel_size
        window_grads = (self._won * dout).reshape(k, k, *dout.shape)
        return self._unpad(conv.fold(window_grads, self._padded_shape, self.stride))


class AvgPool2d(_Pool2d):
    """Mean over each window. Zero padding counts (torch's default count_include_pad=True); the part
    of a ceil_mode window hanging past the padding does not, so edge windows may average fewer."""

    def forward(self, x):
        window_sums = self._windows(x, 0.0).sum(axis=(0, 1))
        inside = np.zeros(self._padded_shape[2:], dtype=x.dtype)
        inside[: x.shape[2] + 2 * self.padding, : x.shape[3] + 2 * self.padding] = 1  # image and padding, not overhang
        self._counts = conv.windows(inside[None, None], self.kernel_size, self.kernel_size, self.stride).sum(axis=(0, 1))[0, 0]
        return window_sums / self._counts

    def backward(self, dout):
        k = self.kernel_size
        window_grads = np.broadcast_to(dout / self._counts, (k, k, *dout.shape))
        return self._unpad(conv.fold(window_grads, self._padded_shape, self.stride))


class GlobalAvgPool2d(Layer):
    """NIN's head: each feature map becomes its mean, N×C×H×W → N×C×1×1 (torch's AdaptiveAvgPool2d(1)).
    Backward: every pixel contributed 1/(H·W) of the mean, so each gets dy/(H·W)."""

    def forward(self, x):
        self._shape = x.shape
        return x.mean(axis=(2, 3), keepdims=True)

    def backward(self, dout):
        return np.broadcast_to(dout / (self._shape[2] * self._shape[3]), self._shape)


class ReLU(Layer):
    def forward(self, x):
        self._positive = x > 0
        return x * self._positive

    def backward(self, dout):
        return dout * self._positive


class Sigmoid(Layer):
    def forward(self, x):
        self._y = 0.5 * (1.0 + np.tanh(0.5 * x))  # = 1/(1+e^-x), without overflow for large |x|
        return self._y

    def backward(self, dout):
        return dout * self._y * (1.0 - self._y)


class Tanh(Layer):
    def forward(self, x):
        self._y = np.tanh(x)
        return self._y

    def backward(self, dout):
        return dout * (1.0 - self._y**2)


class Softsign(Layer):
    """x / (1 + |x|): like tanh, but approaches ±1 polynomially, not exponentially."""

    def forward(self, x):
        self._denominator = 1.0 + np.abs(x)
        return x / self._denominator

    def backward(self, dout):
        return dout / self._denominator**2


class Linear(Layer):
    """y = x Wᵀ + b, with W stored out×in as in torch."""

    def __init__(self, in_features, out_features, rng=None):
        rng = np.random.default_rng(rng)
        self.in_features, self.out_features = in_features, out_features
        self.weight = _uniform_init(rng, (out_features, in_features), in_features)
        self.bias = _uniform_init(rng, (out_features,), in_features)

    def forward(self, x):
        expect_shape(x, 2, 1, self.in_features, f"Linear({self.in_features}→{self.out_features})")
        self._x = x
        return x @ self.weight.data.T + self.bias.data

    def backward(self, dout):
        self.weight.grad = dout.T @ self._x
        self.bias.grad = dout.sum(axis=0)
        return dout @ self.weight.data


class Flatten(Layer):
    def forward(self, x):
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dout):
        return dout.reshape(self._shape)


class Dropout(Layer):
    """While training, zero each unit with probability p and scale the rest by 1/(1-p)
    ("inverted" dropout, as torch), so evaluation needs no rescaling. `rng`: a seed or a
    numpy Generator, so a run's masks repeat."""

    def __init__(self, p=0.5, rng=None):
        if not 0 <= p < 1:
            raise ValueError(f"dropout probability must be in [0, 1), not {p}")
        self.p, self.rng = p, np.random.default_rng(rng)

    def forward(self, x):
        if not self.training or self.p == 0:
            self._mask = None
            return x
        self._mask = ((self.rng.random(x.shape) >= self.p) / (1.0 - self.p)).astype(x.dtype)
        return x * self._mask

    def backward(self, dout):
        return dout if self._mask is None else dout * self._mask


class Add(Layer):
    """The residual addition y = F(x) + shortcut(x). Each summand's gradient is dy unchanged: the
    shortcut hands the upstream gradient to x without passing through any weight."""

    def forward(self, a, b):
        return a + b

    def backward(self, dout):
        return dout, dout


class ZeroPadShortcut(Layer):
    """ResNet's option A: keep every `stride`-th pixel and append `extra_channels` zero channels,
    so x matches F(x) when a stage halves the size and doubles the width. No parameters.
    Backward: the kept pixels get the gradient of their own channels; the rest get zero."""

    def __init__(self, stride: int, extra_channels: int):
        self.stride, self.extra_channels = stride, extra_channels

    def forward(self, x):
        self._shape = x.shape
        kept = x[:, :, :: self.stride, :: self.stride]
        return np.pad(kept, ((0, 0), (0, self.extra_channels), (0, 0), (0, 0)))

    def backward(self, dout):
        dx = conv.channel_major_zeros(self._shape, dout.dtype)
        dx[:, :, :: self.stride, :: self.stride] = dout[:, : self._shape[1]]
        return dx
