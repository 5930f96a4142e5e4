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
    """dL/dx and dL/dθ for L = Σ y·R (R random), analytic vs numeric; x may be a tuple of inputs."""
    inputs = x if isinstance(x, tuple) else (x,)
    for p in layer.parameters().values():
        p.data = p.data.astype(np.float64)
    before_forward()
    upstream = rng.standard_normal(layer.forward(*inputs).shape)
    input_grads = layer.backward(upstream)
    input_grads = input_grads if isinstance(input_grads, tuple) else (input_grads,)
    analytic = {**{f"x{i}": g for i, g in enumerate(input_grads)}, **{name: p.grad.copy() for name, p in layer.parameters().items()}}

    def loss():
        before_forward()
        return float((layer.forward(*inputs) * upstream).sum())

    numeric = {**{f"x{i}": numeric_gradient(loss, x) for i, x in enumerate(inputs)},
               **{name: numeric_gradient(loss, p.data) for name, p in layer.parameters().items()}}
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


@pytest.mark.parametrize("pool", [scratch.MaxPool2d, scratch.AvgPool2d])
def test_ceil_mode_pools(pool):
    """NIN's 3/2 pooling in ceil mode: the last window hangs over the edge (6 → 3, not 2)."""
    layer = pool(3, 2, ceil_mode=True)
    x = distinct((2, 2, 6, 5))
    assert layer.forward(x).shape == (2, 2, 3, 2)
    check_layer(layer, x)


def test_one_by_one_convolution():
    check_layer(scratch.Conv2d(4, 3, 1, rng=rng), rng.standard_normal((2, 4, 3, 5)))


def test_global_average_pooling():
    check_layer(scratch.GlobalAvgPool2d(), rng.standard_normal((2, 3, 4, 5)))


@pytest.mark.parametrize("training", [True, False], ids=["batch statistics", "running statistics"])
def test_batch_norm(training):
    layer = scratch.BatchNorm2d(3)
    layer.weight.data, layer.bias.data = rng.uniform(0.5, 2, 3), rng.standard_normal(3)
    layer.running_mean.data, layer.running_var.data = rng.standard_normal(3), rng.uniform(0.5, 2, 3)
    layer.train(training)
    check_layer(layer, rng.standard_normal((4, 3, 2, 3)))


def test_residual_addition_and_zero_pad_shortcut():
    check_layer(scratch.Add(), (rng.standard_normal((2, 3, 2, 2)), rng.standard_normal((2, 3, 2, 2))))
    check_layer(scratch.ZeroPadShortcut(2, 3), rng.standard_normal((2, 2, 5, 4)))


def test_a_residual_block_graph():
    """Conv → BN → ReLU → conv → BN, plus the option-A shortcut, added, ReLU: the Graph's backward
    adds the gradients of x's two paths."""
    from cnnlab.scratch.models import basic_block

    block = basic_block(2, 4, 2, residual=True, conv_method="im2col", rng=np.random.default_rng(0)).astype(np.float64)
    check_layer(block, away_from_zero((3, 2, 6, 6)))


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
@pytest.mark.parametrize("formula", ["torch", "paper"])
def test_local_response_norm(size, formula):
    check_layer(scratch.LocalResponseNorm(size, alpha=0.5, beta=0.75, k=1.0, formula=formula), rng.standard_normal((2, 6, 2, 2)))


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
