"""The classic half of the zoo (LeNet, AlexNet, VGG, NIN) against the numbers in their papers."""

import pytest
import torch

import cnnlab
from cnnlab.models.lenet import C3_CONNECTIONS, rbf_codes


def trainable(model) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("name, expected", [("lenet5", 61_706), ("lenet5_1998", 60_000)])
def test_lenet_parameter_counts(name, expected):
    assert trainable(cnnlab.create(name)) == expected


def test_lenet1998_c3_follows_table_1_of_the_paper():
    # Table I: 6 maps read 3 contiguous S2 maps, 6 read 4 contiguous, 3 read 4 non-contiguous, 1 reads all
    assert [len(c) for c in C3_CONNECTIONS] == [3] * 6 + [4] * 9 + [6]
    # every S2 map feeds exactly 10 C3 maps (count the X's per row of Table I)
    assert [sum(i in c for c in C3_CONNECTIONS) for i in range(6)] == [10] * 6
    c3 = cnnlab.create("lenet5_1998").features.c3
    assert trainable(c3) == 1_516  # paper: "C3 has 1,516 trainable parameters"


def test_lenet1998_c3_output_map_sees_only_its_table_inputs():
    c3 = cnnlab.create("lenet5_1998").features.c3
    x = torch.randn(1, 6, 14, 14, requires_grad=True)
    for j, inputs in enumerate(C3_CONNECTIONS):
        (grad,) = torch.autograd.grad(c3(x)[0, j].sum(), x)
        touched = {i for i in range(6) if grad[0, i].abs().sum() > 0}
        assert touched == set(inputs), f"C3 map {j}"


def test_lenet1998_subsampling_is_sum_times_coefficient_plus_bias():
    s2 = cnnlab.create("lenet5_1998").features.s2
    x = torch.randn(1, 6, 4, 4)
    expected = x[:, :, :2, :2].sum((2, 3)) * s2.weight + s2.bias
    torch.testing.assert_close(s2(x)[:, :, 0, 0], expected.detach())


def test_lenet1998_scaled_tanh_maps_plus_minus_one_to_itself():
    squash = cnnlab.create("lenet5_1998").features.squash1
    points = torch.tensor([1.0, -1.0, 0.0])
    torch.testing.assert_close(squash(points), points, atol=1e-4, rtol=0)


def test_lenet1998_rbf_codes_are_distinct_fixed_plus_minus_one_bitmaps():
    codes = rbf_codes(10)
    assert codes.shape == (10, 84) and set(codes.unique().tolist()) == {-1.0, 1.0}
    hamming = (codes[:, None] != codes[None]).sum(-1) + torch.eye(10, dtype=torch.long) * 84
    assert hamming.min() >= 7  # hand-drawn digits: closest pair (6, 8) differs in 7 pixels
    assert torch.equal(rbf_codes(26), rbf_codes(26))  # other class counts: seeded, repeatable
    model = cnnlab.create("lenet5_1998")
    assert not any(p.requires_grad for n, p in model.named_buffers())
    assert "classifier.output.codes" in model.state_dict()


def test_lenet1998_output_is_negative_squared_distance_to_codes():
    model = cnnlab.create("lenet5_1998").eval()
    f6 = torch.randn(3, 84)
    scores = model.classifier.output(f6)
    expected = -torch.cdist(f6, rbf_codes(10)) ** 2
    torch.testing.assert_close(scores, expected, rtol=1e-4, atol=1e-4)
    # the code itself is the best-scoring input for its own class
    assert model.classifier.output(rbf_codes(10)).argmax(1).tolist() == list(range(10))


def test_lenet1998_init_is_uniform_within_2_4_over_fan_in():
    model = cnnlab.create("lenet5_1998")
    fan_ins = [(model.features.c1, 25), (model.features.c5, 400), (model.classifier.f6, 120), (model.features.s2, 4)]
    for module, fan_in in fan_ins:
        assert module.weight.abs().max() <= 2.4 / fan_in
        assert module.weight.abs().max() > 0.5 * 2.4 / fan_in


# -- AlexNet -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name, expected", [
    ("alexnet", 60_965_224), ("alexnet_onetower", 62_378_344), ("alexnet_torchvision", 61_100_840),
])
def test_alexnet_parameter_counts(name, expected):
    with torch.device("meta"):
        assert trainable(cnnlab.create(name)) == expected


def test_alexnet_two_towers_are_groups_on_conv2_4_5_only():
    with torch.device("meta"):
        features = cnnlab.create("alexnet").features
    assert [getattr(features, n).groups for n in ("conv1", "conv2", "conv3", "conv4", "conv5")] == [1, 2, 1, 2, 2]
    # the paper's Figure 2: 48 + 48 kernels of 5x5x48 in conv2, conv3 reads all 256 maps
    assert features.conv2.weight.shape == (256, 48, 5, 5) and features.conv3.weight.shape == (384, 256, 3, 3)


def test_alexnet_follows_figure_2_shapes_at_227():
    model = cnnlab.create("alexnet").eval()
    x = torch.randn(1, 3, 227, 227)
    shapes = {}
    for name, layer in model.features.named_children():
        x = layer(x)
        shapes[name] = tuple(x.shape[1:])
    assert shapes["conv1"] == (96, 55, 55) and shapes["pool1"] == (96, 27, 27)
    assert shapes["pool2"] == (256, 13, 13) and shapes["conv5"] == (256, 13, 13) and shapes["pool5"] == (256, 6, 6)


def test_alexnet_init_is_the_papers():
    model = cnnlab.create("alexnet")
    layers = {**dict(model.features.named_children()), **dict(model.classifier.named_children())}
    for name in ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"):
        assert layers[name].weight.std().item() == pytest.approx(0.01, rel=0.05)
        bias = 1.0 if name in {"conv2", "conv4", "conv5", "fc6", "fc7"} else 0.0
        assert layers[name].bias.unique().tolist() == [bias]


def test_alexnet_lrn_is_the_papers_formula():
    # b = a / (k + alpha * sum over the n neighbouring maps of a^2)^beta, alpha NOT divided by n
    lrn = cnnlab.create("alexnet").features.norm1
    a = torch.rand(1, 7, 2, 2) * 10
    k, alpha, beta, n = 2.0, 1e-4, 0.75, 5
    expected = torch.empty_like(a)
    for i in range(7):
        neighbours = a[:, max(0, i - n // 2): min(6, i + n // 2) + 1]
        expected[:, i] = a[:, i] / (k + alpha * (neighbours ** 2).sum(1)) ** beta
    torch.testing.assert_close(lrn(a), expected)


# -- torchvision round trips (random weights, nothing downloaded) --------------------------------

def randomize_batchnorm(model, seed=0):
    """Random running statistics and affine parameters, so eval outputs depend on every BN tensor."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            for tensor in (module.weight, module.bias, module.running_mean):
                tensor.data = torch.randn(tensor.shape, generator=generator) * 0.5
            module.running_var.data = torch.rand(module.running_var.shape, generator=generator) + 0.5
    return model


@pytest.mark.parametrize("ours, theirs, size", [
    ("alexnet_torchvision", "alexnet", 64),
    *[(name, name, 32) for name in ("vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn")],
])
def test_round_trip_with_torchvision(ours, theirs, size):
    """torchvision -> ours and ours -> torchvision: same keys, same outputs (default 1000 classes;
    a small input through the adaptive average pool keeps it cheap)."""
    import torchvision

    torch.manual_seed(0)
    theirs_model = randomize_batchnorm(getattr(torchvision.models, theirs)(weights=None), seed=1).eval()
    ours_model = randomize_batchnorm(cnnlab.create(ours), seed=2).eval()  # other random weights
    theirs_weights = {key: value.clone() for key, value in theirs_model.state_dict().items()}
    x = torch.randn(2, 3, size, size)

    theirs_model.load_state_dict(ours_model.state_dict(), strict=True)
    with torch.no_grad():
        expected = ours_model(x)
        torch.testing.assert_close(theirs_model(x), expected, rtol=0, atol=0)

    ours_model.load_state_dict(theirs_weights, strict=True)
    theirs_model.load_state_dict(theirs_weights, strict=True)
    with torch.no_grad():
        result = ours_model(x)
        assert not torch.equal(result, expected)  # the weights really changed ...
        torch.testing.assert_close(result, theirs_model(x), rtol=0, atol=0)  # ... and both agree again


# -- VGG ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, expected", [
    # the paper's Table 2 rounds these to 133, 133, 134, 138, 144 million
    ("vgg_a", 132_863_336), ("vgg_a_lrn", 132_863_336), ("vgg_b", 133_047_848), ("vgg_c", 133_638_952),
    ("vgg_d", 138_357_544), ("vgg_e", 143_667_240),
    # torchvision's documented counts for its _bn models
    ("vgg_a_bn", 132_868_840), ("vgg_b_bn", 133_053_736), ("vgg_d_bn", 138_365_992), ("vgg_e_bn", 143_678_248),
])
def test_vgg_parameter_counts(name, expected):
    with torch.device("meta"):
        assert trainable(cnnlab.create(name)) == expected


def test_vgg_configurations_have_the_papers_depths():
    from cnnlab.models.vgg import CONFIGS

    weight_layers = {name: sum(e.startswith("conv") for e in config) + 3 for name, config in CONFIGS.items()}
    assert weight_layers == {"A": 11, "A-LRN": 11, "B": 13, "C": 16, "D": 16, "E": 19}
    assert all(config.count("maxpool") == 5 for config in CONFIGS.values())
    assert [e for e in CONFIGS["C"] if e.startswith("conv1")] == ["conv1-256", "conv1-512", "conv1-512"]


def test_vgg_a_lrn_has_one_lrn_after_the_first_convolution():
    with torch.device("meta"):
        features = cnnlab.create("vgg_a_lrn").features
    kinds = [type(m).__name__ for m in features]
    assert kinds[:4] == ["Conv2d", "ReLU", "LocalResponseNorm", "MaxPool2d"] and kinds.count("LocalResponseNorm") == 1
    assert features[2].alpha == pytest.approx(5e-4)  # the paper's 1e-4 in torch's alpha/n convention


def test_vgg_c_uses_1x1_convolutions_in_the_last_three_stages():
    with torch.device("meta"):
        convs = [m for m in cnnlab.create("vgg_c").features if isinstance(m, torch.nn.Conv2d)]
    assert [c.kernel_size[0] for c in convs] == [3, 3, 3, 3, 3, 3, 1, 3, 3, 1, 3, 3, 1]


# -- NIN ---------------------------------------------------------------------------------------

def test_nin_cifar_parameter_count_and_shapes():
    model = cnnlab.create("nin_cifar").eval()
    assert trainable(model) == 966_986
    x = torch.randn(1, 3, 32, 32)
    shapes = {}
    for name, layer in model.features.named_children():
        x = layer(x)
        shapes[name] = tuple(x.shape[1:])
    assert shapes["pool1"] == (96, 16, 16) and shapes["pool2"] == (192, 8, 8) and shapes["mlpconv3"] == (10, 8, 8)
    assert not any(isinstance(m, torch.nn.Linear) for m in model.modules())  # global average pooling classifies
