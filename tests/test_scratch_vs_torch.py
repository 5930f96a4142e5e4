"""Every scratch layer and loss against torch autograd: same float64 inputs, same upstream gradient,
forward outputs and all gradients equal to 1e-10."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnlab import scratch
from cnnlab.errors import CnnlabError
from cnnlab.scratch import conv

TOL = 1e-10
rng = np.random.default_rng(0)


def check_layer(layer, torch_forward, x_shape, torch_params=()):
    """Run both engines on one input and one upstream gradient; compare y, dL/dx and dL/dθ."""
    x = rng.standard_normal(x_shape)
    for p in layer.parameters().values():
        p.data = p.data.astype(np.float64)
    y = layer.forward(x)
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy)

    xt = torch.tensor(x, requires_grad=True)
    params = {name: torch.tensor(p.data, requires_grad=True) for name, p in layer.parameters().items()}
    yt = torch_forward(xt, **params)
    yt.backward(torch.tensor(dy))
    assert y.shape == tuple(yt.shape)
    assert np.abs(y - yt.detach().numpy()).max() < TOL
    assert np.abs(dx - xt.grad.numpy()).max() < TOL
    for name, p in layer.parameters().items():
        assert np.abs(p.grad - params[name].grad.numpy()).max() < TOL, name


# N, C, H, W, O, kernel, stride, padding: odd sizes, leftover rows (stride not dividing), padding
CONV_GRID = [
    (2, 1, 8, 8, 3, 3, 1, 0),
    (2, 3, 9, 7, 4, 3, 2, 1),
    (1, 2, 10, 10, 2, 5, 3, 2),
    (3, 4, 6, 8, 5, 1, 1, 0),
    (2, 3, 11, 11, 2, 4, 4, 0),  # AlexNet-like: stride 4, 4x4 kernel, 3 leftover rows
    (1, 2, 7, 7, 3, 7, 1, 3),
]


@pytest.mark.parametrize("method", ["naive", "im2col"])
@pytest.mark.parametrize("n, c, h, w, o, k, s, p", CONV_GRID)
def test_conv2d(method, n, c, h, w, o, k, s, p):
    layer = scratch.Conv2d(c, o, k, stride=s, padding=p, method=method, rng=rng)
    check_layer(layer, lambda x, weight, bias: F.conv2d(x, weight, bias, stride=s, padding=p), (n, c, h, w))


@pytest.mark.parametrize("n, c, h, w, o, k, s, p", CONV_GRID)
def test_rotated_kernel_input_gradient_equals_col2im(n, c, h, w, o, k, s, p):
    """The notes' rule (full convolution with 180°-rotated kernels) and col2im give the same dL/dX."""
    weight = rng.standard_normal((o, c, k, k))
    oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    dout = rng.standard_normal((n, o, oh, ow))
    rotated = conv.conv2d_input_grad_rotated(dout, weight, (n, c, h, w), s, p)
    cols = weight.reshape(o, -1).T @ dout.transpose(1, 0, 2, 3).reshape(o, -1)
    via_col2im = conv.col2im(cols, (n, c, h + 2 * p, w + 2 * p), k, k, s)[:, :, p : p + h, p : p + w]
    assert np.abs(rotated - via_col2im).max() < TOL


def test_naive_convolution_is_the_notes_formula():
    """The 3×3 input, 2×2 filter example of the notes, written out term by term."""
    x = rng.standard_normal((1, 1, 3, 3))
    f = rng.standard_normal((1, 1, 2, 2))
    (X, F_) = x[0, 0], f[0, 0]
    out = conv.conv2d_naive(x, f, np.zeros(1))[0, 0]
    expected = [[F_[0, 0] * X[i, j] + F_[0, 1] * X[i, j + 1] + F_[1, 0] * X[i + 1, j] + F_[1, 1] * X[i + 1, j + 1]
                 for j in range(2)] for i in range(2)]
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-15)


POOL_GRID = [(2, 2, 0), (3, 2, 0), (3, 2, 1), (2, 1, 0), (3, 3, 1)]  # kernel, stride, padding


@pytest.mark.parametrize("k, s, p", POOL_GRID)
def test_maxpool(k, s, p):
    check_layer(scratch.MaxPool2d(k, s, p), lambda x: F.max_pool2d(x, k, s, p), (2, 3, 9, 8))


@pytest.mark.parametrize("k, s, p", POOL_GRID)
def test_avgpool(k, s, p):
    check_layer(scratch.AvgPool2d(k, s, p), lambda x: F.avg_pool2d(x, k, s, p), (2, 3, 9, 8))


def test_maxpool_switches_point_at_the_maximum():
    x = rng.standard_normal((2, 3, 6, 6))
    pool = scratch.MaxPool2d(2)
    y = pool.forward(x)
    rows, cols = np.divmod(pool.switches, 2)  # position of the winner inside its 2×2 window (row-major)
    i, j = np.arange(3)[:, None] * 2 + rows, np.arange(3)[None, :] * 2 + cols  # ... and in the image
    assert np.array_equal(x[np.arange(2)[:, None, None, None], np.arange(3)[None, :, None, None], i, j], y)


@pytest.mark.parametrize("layer, fn", [
    (scratch.ReLU(), F.relu),
    (scratch.Sigmoid(), torch.sigmoid),
    (scratch.Tanh(), torch.tanh),
    (scratch.Softsign(), F.softsign),
    (scratch.Flatten(), lambda x: torch.flatten(x, 1)),
])
def test_elementwise_and_flatten(layer, fn):
    check_layer(layer, fn, (3, 4, 5, 2))


def test_sigmoid_large_inputs_do_not_overflow():
    y = scratch.Sigmoid().forward(np.array([-1000.0, 0.0, 1000.0]))
    assert np.array_equal(y, [0.0, 0.5, 1.0])


@pytest.mark.parametrize("n_in, n_out", [(7, 3), (400, 120)])
def test_linear(n_in, n_out):
    check_layer(scratch.Linear(n_in, n_out, rng=rng), F.linear, (5, n_in))


@pytest.mark.parametrize("size, alpha, beta, k", [(5, 1e-4, 0.75, 2.0), (4, 0.1, 0.75, 1.0), (3, 0.5, 0.5, 1.0), (1, 1.0, 1.0, 1.0)])
def test_local_response_norm(size, alpha, beta, k):
    """AlexNet's LRN (n=5, α=1e-4, β=0.75, k=2) and odd/even windows with large α to make the
    cross-channel terms count."""
    check_layer(scratch.LocalResponseNorm(size, alpha, beta, k),
                lambda x: F.local_response_norm(x, size, alpha, beta, k), (2, 7, 3, 4))


def test_dropout_matches_torch_with_the_same_mask():
    layer = scratch.Dropout(0.3, rng=np.random.default_rng(1))
    x = rng.standard_normal((50, 40))
    y = layer.forward(x)
    kept = y != 0
    assert 0.6 < kept.mean() < 0.8

    def torch_dropout(xt):  # torch's inverted dropout with our mask
        return xt * torch.tensor(kept) / 0.7

    xt = torch.tensor(x, requires_grad=True)
    torch_dropout(xt).backward(torch.ones_like(xt))
    np.testing.assert_allclose(y, torch_dropout(torch.tensor(x)).detach().numpy(), rtol=0, atol=TOL)
    np.testing.assert_allclose(layer.backward(np.ones_like(x)), xt.grad.numpy(), rtol=0, atol=TOL)
    assert np.array_equal(layer.eval().forward(x), x)


def check_loss(loss_fn, torch_loss, z, target):
    loss, grad = loss_fn(z, target)
    zt = torch.tensor(z, requires_grad=True)
    lt = torch_loss(zt, torch.tensor(target))
    lt.backward()
    assert abs(loss - lt.item()) < TOL
    assert np.abs(grad - zt.grad.numpy()).max() < TOL


def test_softmax_cross_entropy():
    check_loss(scratch.softmax_cross_entropy, F.cross_entropy, rng.standard_normal((6, 10)) * 5, rng.integers(0, 10, 6))


def test_pixelwise_softmax_cross_entropy_sums_over_the_image():
    n = 3
    check_loss(scratch.pixelwise_softmax_cross_entropy, lambda z, y: F.cross_entropy(z, y, reduction="sum") / n,
               rng.standard_normal((n, 4, 5, 6)), rng.integers(0, 4, (n, 5, 6)))


def test_sigmoid_cross_entropy():
    check_loss(scratch.sigmoid_cross_entropy,
               lambda z, t: F.binary_cross_entropy_with_logits(z, t, reduction="sum") / len(z),
               rng.standard_normal((5, 7)) * 10, rng.random((5, 7)))


def test_euclidean():
    check_loss(scratch.euclidean, lambda a, b: F.mse_loss(a, b, reduction="sum") / (2 * len(a)),
               rng.standard_normal((4, 3)), rng.standard_normal((4, 3)))


@pytest.mark.parametrize("k, s, p", [(3, 2, 0), (3, 2, 1), (2, 2, 0)])
@pytest.mark.parametrize("h, w", [(16, 16), (8, 7), (9, 9)])
def test_ceil_mode_pools(k, s, p, h, w):
    """ceil_mode as torch (and Caffe): edge windows hang over, and average over what they cover."""
    check_layer(scratch.MaxPool2d(k, s, p, ceil_mode=True), lambda x: F.max_pool2d(x, k, s, p, ceil_mode=True), (2, 3, h, w))
    check_layer(scratch.AvgPool2d(k, s, p, ceil_mode=True), lambda x: F.avg_pool2d(x, k, s, p, ceil_mode=True), (2, 3, h, w))


def test_maxpool_ties_go_to_the_first_input_as_in_torch():
    x = np.zeros((1, 2, 4, 4))  # every window a four-way tie, as after a ReLU
    layer = scratch.MaxPool2d(2)
    layer.forward(x)
    xt = torch.tensor(x, requires_grad=True)
    F.max_pool2d(xt, 2).backward(torch.ones(1, 2, 2, 2, dtype=torch.float64))
    assert np.array_equal(layer.backward(np.ones((1, 2, 2, 2))), xt.grad.numpy())


def test_global_average_pooling():
    check_layer(scratch.GlobalAvgPool2d(), lambda x: F.adaptive_avg_pool2d(x, 1), (3, 4, 5, 6))


@pytest.mark.parametrize("training", [True, False], ids=["batch statistics", "running statistics"])
def test_batch_norm(training):
    layer = scratch.BatchNorm2d(4)
    layer.weight.data, layer.bias.data = rng.uniform(0.5, 2, 4), rng.standard_normal(4)
    mean, var = rng.standard_normal(4), rng.uniform(0.5, 2, 4)
    layer.running_mean.data, layer.running_var.data = mean.copy(), var.copy()
    layer.train(training)
    running_mean, running_var = torch.tensor(mean), torch.tensor(var)
    check_layer(layer, lambda x, weight, bias: F.batch_norm(x, running_mean, running_var, weight, bias, training, 0.1, 1e-5),
                (3, 4, 5, 2))
    # the running statistics moved (training) or stayed (evaluation) exactly as torch's
    assert np.abs(layer.running_mean.data - running_mean.numpy()).max() < TOL
    assert np.abs(layer.running_var.data - running_var.numpy()).max() < TOL
    assert layer.num_batches_tracked.data == int(training) and np.array_equal(layer.running_mean.data, mean) != training


def test_batch_norm_refuses_one_value_per_channel():
    with pytest.raises(CnnlabError, match="more than one value per channel"):
        scratch.BatchNorm2d(3).forward(np.ones((1, 3, 1, 1)))


def test_zero_pad_shortcut_is_the_zoo_option_a():
    from cnnlab.models.resnet import ZeroPadShortcut

    twin = ZeroPadShortcut(2, 5)
    check_layer(scratch.ZeroPadShortcut(2, 5), twin, (2, 3, 7, 6))


def test_residual_addition():
    layer = scratch.Add()
    a, b = rng.standard_normal((2, 3, 4, 4)), rng.standard_normal((2, 3, 4, 4))
    at, bt = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    dy = rng.standard_normal((2, 3, 4, 4))
    (at + bt).backward(torch.tensor(dy))
    assert np.array_equal(layer.forward(a, b), a + b)
    da, db = layer.backward(dy)
    assert np.array_equal(da, at.grad.numpy()) and np.array_equal(db, bt.grad.numpy())


@pytest.mark.parametrize("size", [5, 3, 4])
def test_local_response_norm_paper_formula_is_the_zoo_paper_lrn(size):
    """Krizhevsky et al.'s α undivided: the zoo's paper_lrn (α·n handed to torch) is the same layer."""
    from cnnlab.models.layers import paper_lrn

    reference = paper_lrn(size, alpha=0.1, beta=0.75, k=2.0)
    if size % 2 == 0:  # the paper's window has ⌊n/2⌋ on both sides: n + 1 channels for an even n
        reference = torch.nn.LocalResponseNorm(size + 1, alpha=0.1 * (size + 1), beta=0.75, k=2.0)
    check_layer(scratch.LocalResponseNorm(size, 0.1, 0.75, 2.0, formula="paper"), reference, (2, 7, 3, 4))


def test_dropout_is_seeded():
    x = np.ones((20, 30))
    first, second = (scratch.Dropout(0.5, rng=7).forward(x) for _ in range(2))
    assert np.array_equal(first, second) and not np.array_equal(first, scratch.Dropout(0.5, rng=8).forward(x))
    assert set(np.unique(first)) == {0.0, 2.0}


def test_adam_steps_give_the_same_weights_as_torch():
    """Five Adam steps with weight decay on one Linear layer: moments, bias correction and the
    L2 decay folded into the gradient, as torch.optim.Adam."""
    layer = scratch.Linear(6, 4, rng=rng).astype(np.float64)
    reference = torch.nn.Linear(6, 4).double()
    reference.load_state_dict({k: torch.tensor(v) for k, v in layer.state_dict().items()})
    optimizer = scratch.Adam(layer.parameters(), lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)
    torch_optimizer = torch.optim.Adam(reference.parameters(), lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)
    for _ in range(5):
        x, dy = rng.standard_normal((3, 6)), rng.standard_normal((3, 4))
        layer.forward(x)
        layer.backward(dy)
        optimizer.step()
        torch_optimizer.zero_grad()
        reference(torch.tensor(x)).backward(torch.tensor(dy))
        torch_optimizer.step()
    for name, value in reference.state_dict().items():
        assert np.abs(layer.state_dict()[name] - value.numpy()).max() < 1e-12, name
    assert optimizer.steps == 5
