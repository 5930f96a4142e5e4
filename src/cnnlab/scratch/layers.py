"""Layers with a forward and a hand-written backward.

Every layer follows one contract: `forward(x)` returns y and remembers what the backward pass
needs; `backward(dy)` takes dL/dy, stores dL/dθ in each `Parameter.grad` and returns dL/dx.
Conventions (shapes, initialisation, parameter names) follow torch.nn, so weights move between
the two engines unchanged.
"""

from __future__ import annotations

import numpy as np

from cnnlab.scratch import conv


class Parameter:
    """A trainable array and the gradient the last backward pass left for it."""

    def __init__(self, data: np.ndarray):
        self.data = data
        self.grad = np.zeros_like(data)


class Layer:
    training = True

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    def parameters(self) -> dict[str, Parameter]:
        return {name: value for name, value in vars(self).items() if isinstance(value, Parameter)}

    def train(self, mode: bool = True):
        """Training mode on (Dropout drops) or off."""
        self.training = mode
        return self

    def eval(self):
        return self.train(False)

    def __repr__(self) -> str:
        shown = {k: v for k, v in vars(self).items() if isinstance(v, (int, float, str)) and k[0] != "_" and k != "training"}
        return f"{type(self).__name__}({', '.join(f'{k}={v}' for k, v in shown.items())})"


def _uniform_init(rng: np.random.Generator, shape: tuple, fan_in: int) -> Parameter:
    """U(-1/√fan_in, 1/√fan_in): torch.nn's default for Conv2d and Linear weights and biases."""
    bound = 1.0 / np.sqrt(fan_in)
    return Parameter(rng.uniform(-bound, bound, size=shape).astype(np.float32))


class Conv2d(Layer):
    """2-D convolution. `method="im2col"` (fast: one matrix multiply) or `"naive"` (the notes'
    formula pixel by pixel, input gradient by full convolution with 180°-rotated kernels)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, method="im2col", rng=None):
        if method not in ("im2col", "naive"):
            raise ValueError(f"method must be 'im2col' or 'naive', not {method!r}")
        rng = rng or np.random.default_rng()
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.stride, self.padding, self.method = stride, padding, method
        fan_in = in_channels * kernel_size * kernel_size
        self.weight = _uniform_init(rng, (out_channels, in_channels, kernel_size, kernel_size), fan_in)
        self.bias = _uniform_init(rng, (out_channels,), fan_in)

    def forward(self, x):
        self._x = x
        w, b, k, s = self.weight.data, self.bias.data, self.kernel_size, self.stride
        if self.method == "naive":
            return conv.conv2d_naive(x, w, b, s, self.padding)
        xp = conv.pad(x, self.padding)
        self._padded_shape, self._cols = xp.shape, conv.im2col(xp, k, k, s)
        n, oh, ow = x.shape[0], (xp.shape[2] - k) // s + 1, (xp.shape[3] - k) // s + 1
        out = w.reshape(self.out_channels, -1) @ self._cols + b[:, None]  # O × (N·OH·OW)
        return out.reshape(self.out_channels, n, oh, ow).transpose(1, 0, 2, 3)

    def backward(self, dout):
        x, w, k, s, p = self._x, self.weight.data, self.kernel_size, self.stride, self.padding
        self.bias.grad = dout.sum(axis=(0, 2, 3))
        if self.method == "naive":
            self.weight.grad = conv.conv2d_weight_grad_naive(x, dout, (k, k), s, p)
            return conv.conv2d_input_grad_rotated(dout, w, x.shape, s, p)
        d2 = dout.transpose(1, 0, 2, 3).reshape(self.out_channels, -1)  # one column per output pixel
        self.weight.grad = (d2 @ self._cols.T).reshape(w.shape)
        dxp = conv.col2im(w.reshape(self.out_channels, -1).T @ d2, self._padded_shape, k, k, s)
        return dxp[:, :, p : p + x.shape[2], p : p + x.shape[3]]


class _Pool2d(Layer):
    def __init__(self, kernel_size, stride=None, padding=0):
        self.kernel_size, self.stride, self.padding = kernel_size, stride or kernel_size, padding

    def _windows(self, x, pad_value):
        xp = conv.pad(x, self.padding, pad_value)
        self._x_shape, self._padded_shape = x.shape, xp.shape
        return conv.windows(xp, self.kernel_size, self.kernel_size, self.stride)

    def _unpad(self, grad_padded):
        p, (h, w) = self.padding, self._x_shape[2:]
        return grad_padded[:, :, p : p + h, p : p + w]


class MaxPool2d(_Pool2d):
    """Max over each window; the "switches" remember which input won, and only it gets gradient."""

    def forward(self, x):
        win = self._windows(x, -np.inf)
        candidates = win.reshape(-1, *win.shape[2:])  # k·k candidates for every output pixel
        self.switches = candidates.argmax(axis=0)
        return candidates.max(axis=0)

    def backward(self, dout):
        k = self.kernel_size
        winner = self.switches == np.arange(k * k).reshape(-1, 1, 1, 1, 1)
        window_grads = (winner * dout).reshape(k, k, *dout.shape)
        return self._unpad(conv.fold(window_grads, self._padded_shape, self.stride))


class AvgPool2d(_Pool2d):
    """Mean over each window (zero padding counts, as torch's default count_include_pad=True)."""

    def forward(self, x):
        return self._windows(x, 0.0).mean(axis=(0, 1))

    def backward(self, dout):
        k = self.kernel_size
        window_grads = np.broadcast_to(dout / (k * k), (k, k, *dout.shape))
        return self._unpad(conv.fold(window_grads, self._padded_shape, self.stride))


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
        rng = rng or np.random.default_rng()
        self.in_features, self.out_features = in_features, out_features
        self.weight = _uniform_init(rng, (out_features, in_features), in_features)
        self.bias = _uniform_init(rng, (out_features,), in_features)

    def forward(self, x):
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
    ("inverted" dropout, as torch), so evaluation needs no rescaling."""

    def __init__(self, p=0.5, rng=None):
        self.p, self.rng = p, rng or np.random.default_rng()

    def forward(self, x):
        if not self.training or self.p == 0:
            self._mask = None
            return x
        self._mask = (self.rng.random(x.shape) >= self.p) / (1.0 - self.p)
        return x * self._mask

    def backward(self, dout):
        return dout if self._mask is None else dout * self._mask


class LocalResponseNorm(Layer):
    """AlexNet's LRN across channels, with torch's convention:
    b_c = a_c / (k + α/n · Σ_{c' near c} a_{c'}²)^β, the window running from c - ⌊n/2⌋ to c + ⌊(n-1)/2⌋."""

    def __init__(self, size, alpha=1e-4, beta=0.75, k=1.0):
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def _window_sum(self, v, before, after):
        """Σ of v over channels c-before … c+after (missing channels count as zero)."""
        padded = np.pad(v, ((0, 0), (before, after), (0, 0), (0, 0)))
        return sum(padded[:, i : i + v.shape[1]] for i in range(before + after + 1))

    def forward(self, x):
        self._x = x
        self._d = self.k + self.alpha / self.size * self._window_sum(x * x, self.size // 2, (self.size - 1) // 2)
        return x * self._d**-self.beta

    def backward(self, dout):
        x, d = self._x, self._d
        # channel j feeds the denominators of channels j-⌊(n-1)/2⌋ … j+⌊n/2⌋ (the window, mirrored)
        feedback = self._window_sum(dout * x * d ** (-self.beta - 1), (self.size - 1) // 2, self.size // 2)
        return dout * d**-self.beta - 2 * self.alpha * self.beta / self.size * x * feedback


class Sequential(Layer):
    """Layers in order, each under a name; parameter names are "<layer>.<param>" as in a torch state dict."""

    def __init__(self, *layers):
        self.layers = [item if isinstance(item, tuple) else (str(i), item) for i, item in enumerate(layers)]

    def forward(self, x):
        for _, layer in self.layers:
            x = layer(x)
        return x

    def backward(self, dout):
        for _, layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout

    def parameters(self) -> dict[str, Parameter]:
        return {f"{name}.{key}": p for name, layer in self.layers for key, p in layer.parameters().items()}

    def train(self, mode: bool = True) -> "Sequential":
        self.training = mode
        for _, layer in self.layers:
            layer.train(mode)
        return self

    def astype(self, dtype) -> "Sequential":
        """Cast every parameter (float64 for gradient checks, float32 to train)."""
        for p in self.parameters().values():
            p.data, p.grad = p.data.astype(dtype), p.grad.astype(dtype)
        return self

    def state_dict(self) -> dict[str, np.ndarray]:
        return {name: p.data.copy() for name, p in self.parameters().items()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Copy arrays in by name; names and shapes must match exactly (no silent partial loads)."""
        params = self.parameters()
        missing, unexpected = sorted(set(params) - set(state)), sorted(set(state) - set(params))
        if missing or unexpected:
            raise KeyError(f"state does not match the model: missing {missing}, unexpected {unexpected}")
        for name, p in params.items():
            if p.data.shape != tuple(state[name].shape):
                raise ValueError(f"{name}: model has shape {p.data.shape}, state has {tuple(state[name].shape)}")
            p.data = np.array(state[name], dtype=p.data.dtype)

    def __repr__(self) -> str:
        lines = "".join(f"  ({name}): " + repr(layer).replace("\n", "\n  ") + "\n" for name, layer in self.layers)
        return f"Sequential(\n{lines})"
