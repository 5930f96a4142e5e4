"""Every hand-written backward pass against central finite differences, in float64.

Inputs are chosen where each function is smooth (no ReLU input near 0, no ties inside a max-pool
window), so the only differences are rounding: max relative error below 1e-6.
"""

import numpy as np
import pytest

from cnnlab import scratch

rng = np.random.default_rng(1)
H = 1e-5


def numeric_gradient(f, array):
    """(f(a + h) - f(a - h)) / 2h for every entry of `array`, changed in place and restored."""
    grad = np.zeros_like(array)
    for index in np.ndindex(array.shape):
        kept = array[index]
        array[index] = kept + H
        up = f()
        array[index] = kept - H
        down = f()
        array[index] = kept
        grad[index] = (up - down) / (2 * H)
    return grad


def relative_error(analytic, numeric):
    return np.max(np.abs(analytic - numeric) / np.maximum(np.abs(analytic) + np.abs(numeric), 1e-8))


def check_layer(layer, x, before_forward=lambda: None):
    """dL/dx and dL/dθ for L = Σ y·R (R random), analytic vs numeric."""
    for p in layer.parameters().values():
        p.data = p.data.astype(np.float64)
    before_forward()
    upstream = rng.standard_normal(layer.forward(x).shape)
    analytic = {"x": layer.backward(upstream), **{name: p.grad.copy() for name, p in layer.parameters().items()}}

    def loss():
        before_forward()
        return float((layer.forward(x) * upstream).sum())

    numeric = {"x": numeric_gradient(loss, x), **{name: numeric_gradient(loss, p.data) for name, p in layer.parameters().items()}}
    for name in analytic:
        assert relative_error(analytic[name], numeric[name]) < 1e-6, name


def away_from_zero(shape):
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.1, 1.0, size=shape)


def distinct(shape):
    """Values 0.01 apart in random order: every max-pool window has one clear winner."""
    return rng.permutation(int(np.prod(shape))).reshape(shape) * 0.01


@pytest.mark.parametrize("method", ["naive", "im2col"])
@pytest.mark.parametrize("stride, padding", [(1, 0), (2, 1)])
def test_conv2d(method, stride, padding):
    check_layer(scratch.Conv2d(2, 3, 3, stride, padding, method=method, rng=rng), rng.standard_normal((2, 2, 5, 6)))


@pytest.mark.parametrize("k, s, p", [(2, 2, 0), (3, 2, 1)])
def test_maxpool(k, s, p):
    check_layer(scratch.MaxPool2d(k, s, p), distinct((2, 2, 6, 5)))


@pytest.mark.parametrize("k, s, p", [(2, 2, 0), (3, 2, 1)])
def test_avgpool(k, s, p):
    check_layer(scratch.AvgPool2d(k, s, p), rng.standard_normal((2, 2, 6, 5)))


@pytest.mark.parametrize("layer", [scratch.ReLU(), scratch.Sigmoid(), scratch.Tanh(), scratch.Softsign(), scratch.Flatten()],
                         ids=lambda layer: type(layer).__name__)
def test_elementwise_and_flatten(layer):
    check_layer(layer, away_from_zero((2, 3, 2, 2)))


def test_linear():
    check_layer(scratch.Linear(5, 4, rng=rng), rng.standard_normal((3, 5)))


def test_dropout_with_a_fixed_mask():
    layer = scratch.Dropout(0.4)

    def same_mask():
        layer.rng = np.random.default_rng(7)

    check_layer(layer, rng.standard_normal((4, 6)), same_mask)


@pytest.mark.parametrize("size", [5, 2])
def test_local_response_norm(size):
    check_layer(scratch.LocalResponseNorm(size, alpha=0.5, beta=0.75, k=1.0), rng.standard_normal((2, 6, 2, 2)))


def check_loss(loss_fn, z, target):
    _, analytic = loss_fn(z, target)
    numeric = numeric_gradient(lambda: loss_fn(z, target)[0], z)
    assert relative_error(analytic, numeric) < 1e-6


def test_softmax_cross_entropy():
    check_loss(scratch.softmax_cross_entropy, rng.standard_normal((4, 5)), rng.integers(0, 5, 4))


def test_pixelwise_softmax_cross_entropy():
    check_loss(scratch.pixelwise_softmax_cross_entropy, rng.standard_normal((2, 3, 3, 4)), rng.integers(0, 3, (2, 3, 4)))


def test_sigmoid_cross_entropy():
    check_loss(scratch.sigmoid_cross_entropy, rng.standard_normal((3, 4)), rng.random((3, 4)))


def test_euclidean():
    check_loss(scratch.euclidean, rng.standard_normal((3, 4)), rng.standard_normal((3, 4)))
