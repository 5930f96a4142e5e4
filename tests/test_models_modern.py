"""The modern half of the zoo against its papers and torchvision: GoogLeNet, Highway networks, ResNets.

Parameter counts are the papers' (and torchvision's) numbers; round trips move random weights between
our models and torchvision's and demand identical outputs; the building blocks are checked by arithmetic.
"""

import pytest
import torch
import torchvision
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.models import card, create
from cnnlab.models.highway import Highway

RESNET_PARAMS = {
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
    "resnet20": 269_722,
    "resnet32": 464_154,
    "resnet44": 658_586,
    "resnet56": 853_018,
    "resnet110": 1_727_962,
    "resnet1202": 19_421_274,
    # plain twins: option A shortcuts have no parameters, so the CIFAR counts are equal ...
    "plain20": 269_722,
    "plain32": 464_154,
    "plain44": 658_586,
    "plain56": 853_018,
    "plain110": 1_727_962,
    # ... and the ImageNet ones lack exactly the three projection shortcuts (conv 1×1 + BN)
    "plain18": 11_689_512 - (64 * 128 + 128 * 256 + 256 * 512) - 2 * (128 + 256 + 512),
    "plain34": 21_797_672 - (64 * 128 + 128 * 256 + 256 * 512) - 2 * (128 + 256 + 512),
}


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def on_meta(name: str, **kwargs) -> nn.Module:
    """Build without allocating or initialising weights: counts and state-dict targets only."""
    with torch.device("meta"):
        return create(name, guard=False, **kwargs)


def randomize_batchnorm(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BN layer non-trivial statistics and affine terms, so that a round trip that
    confused two BN layers would change the outputs (fresh BN layers are all identical)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                for tensor, low in ((module.weight, 0.5), (module.bias, -0.5), (module.running_mean, -0.5)):
                    tensor.copy_(torch.rand(tensor.shape, generator=generator) + low)
                module.running_var.copy_(torch.rand(module.running_var.shape, generator=generator) + 0.5)
    return model


def transfer(source: nn.Module, target_on_meta: nn.Module) -> nn.Module:
    """Load `source`'s state dict into a meta-device model (strict: every key and shape must match)."""
    target_on_meta.load_state_dict(source.state_dict(), assign=True)
    return target_on_meta


def counted(name: str) -> int:
    """Parameters of a freshly built model; ImageNet-sized ones on the meta device (no memory, no init)."""
    return n_params(on_meta(name) if card(name).input_shape[-1] >= 224 else create(name))


@pytest.mark.parametrize("name, expected", RESNET_PARAMS.items())
def test_resnet_parameter_counts(name, expected):
    assert counted(name) == expected
    assert card(name).params == expected


def assert_round_trip(name: str, theirs_builder, x: torch.Tensor, theirs_only: dict = {}, **kwargs):  # noqa: B006
    """torchvision's random model -> ours -> identical outputs, and our random model -> theirs."""
    torch.manual_seed(0)
    theirs = randomize_batchnorm(theirs_builder(**kwargs, **theirs_only)).eval()
    ours = transfer(theirs, on_meta(name, **kwargs)).eval()
    with torch.no_grad():
        assert torch.equal(ours(x), theirs(x))

    ours = randomize_batchnorm(create(name, guard=False, **kwargs), seed=1).eval()
    with torch.device("meta"):
        theirs = theirs_builder(**kwargs, **theirs_only)
    theirs = transfer(ours, theirs).eval()
    with torch.no_grad():
        assert torch.equal(theirs(x), ours(x))


@pytest.mark.parametrize("name", ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"])
def test_resnet_round_trips_with_torchvision(name):
    assert_round_trip(name, getattr(torchvision.models, name), torch.randn(1, 3, 32, 32), num_classes=10)


def test_shortcut_options_a_b_c_change_only_the_projections():
    projections = (64 * 128 + 128 * 256 + 256 * 512) + 2 * (128 + 256 + 512)  # 1×1 conv + BN where shapes change
    assert counted_with("resnet34", shortcut="A") == RESNET_PARAMS["plain34"] == RESNET_PARAMS["resnet34"] - projections
    every_block = sum(c * c + 2 * c for c, blocks in ((64, 3), (128, 3), (256, 5), (512, 2)) for _ in range(blocks))
    assert counted_with("resnet34", shortcut="C") == RESNET_PARAMS["resnet34"] + every_block  # + identity blocks
    assert counted_with("resnet20", shortcut="B") == RESNET_PARAMS["resnet20"] + (16 * 32 + 64) + (32 * 64 + 128)
    with pytest.raises(CnnlabError, match="shortcut must be one of"):
        create("resnet20", shortcut="D")


def counted_with(name: str, **kwargs) -> int:
    return n_params(on_meta(name, **kwargs))


def test_stride_in_1x1_moves_the_bottleneck_stride_and_keeps_the_weights():
    paper = on_meta("resnet50", stride_in_1x1=True)
    assert paper.layer2[0].conv1.stride == (2, 2) and paper.layer2[0].conv2.stride == (1, 1)
    v1_5 = on_meta("resnet50")
    assert v1_5.layer2[0].conv1.stride == (1, 1) and v1_5.layer2[0].conv2.stride == (2, 2)
    assert paper.state_dict().keys() == v1_5.state_dict().keys()
    with pytest.raises(CnnlabError, match="basic blocks"):
        create("resnet18", stride_in_1x1=True)


def test_option_a_shortcut_is_parameter_free_zero_padding():
    block = create("resnet20").layer2[0]  # 16 -> 32 channels, stride 2: the shortcut pads
    assert n_params(block.downsample) == 0 and not list(block.downsample.buffers())
    x = torch.randn(2, 16, 8, 8)
    shortcut = block.downsample(x)
    assert shortcut.shape == (2, 32, 4, 4)
    assert torch.equal(shortcut[:, :16], x[:, :, ::2, ::2])  # identity on the old channels
    assert torch.count_nonzero(shortcut[:, 16:]) == 0  # zeros on the new ones

    # the block really adds it: zero the residual branch (BN scale 0) and the output is ReLU(shortcut)
    block.eval()
    with torch.no_grad():
        block.bn2.weight.zero_()
        block.bn2.bias.zero_()
        assert torch.equal(block(x), torch.relu(shortcut))


def test_plain_networks_have_no_shortcut_and_resnets_do():
    x = torch.randn(2, 16, 8, 8)
    for name, expect_shortcut in (("resnet20", True), ("plain20", False)):
        block = create(name).layer1[0].eval()
        with torch.no_grad():
            block.bn2.weight.zero_()
            block.bn2.bias.zero_()
            out = block(x)
        assert torch.equal(out, torch.relu(x) if expect_shortcut else torch.zeros_like(x))


def test_resnet_init_is_he_normal_fan_out():
    conv = create("resnet56").layer3[4].conv1  # 64 -> 64, 3×3: fan_out = 576, std = sqrt(2/576)
    assert conv.weight.std().item() == pytest.approx((2 / 576) ** 0.5, rel=0.05)


def test_cifar_resnet_forward_backward():
    model = create("resnet20")
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10)
    out.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_resnet_cards_carry_the_paper_numbers():
    assert [card(f"resnet{d}").macs for d in (18, 34, 50, 101, 152)] == [
        1_800_000_000, 3_600_000_000, 3_800_000_000, 7_600_000_000, 11_300_000_000]
    assert card("resnet20").published_error.startswith("8.75%")
    assert card("resnet56").published_error.startswith("6.97%")
    assert card("resnet110").published_error.startswith("6.43%")
    assert card("resnet20").input_shape == (3, 32, 32) and card("resnet20").num_classes == 10


# ---- GoogLeNet -----------------------------------------------------------------------------------

AUX_HEAD_PARAMS = sum(  # paper's auxiliary heads: 1×1 conv 128, FC 2048 -> 1024, FC 1024 -> 1000, with biases
    (c * 128 + 128) + (2048 * 1024 + 1024) + (1024 * 1000 + 1000) for c in (512, 528)
)


def test_googlenet_parameter_counts():
    assert counted_googlenet("googlenet", aux_logits=False) == 6_998_552
    assert counted_googlenet("googlenet") == 6_998_552 + AUX_HEAD_PARAMS
    assert counted_googlenet("googlenet_torchvision", aux_logits=False) == 6_624_904
    with torch.device("meta"):
        theirs = torchvision.models.googlenet(aux_logits=True, init_weights=False)
    assert counted_googlenet("googlenet_torchvision") == n_params(theirs)
    assert card("googlenet").params == 6_998_552 and card("googlenet_torchvision").params == 6_624_904


def counted_googlenet(name: str, **kwargs) -> int:
    return n_params(on_meta(name, **kwargs))


def test_googlenet_follows_table_1_output_sizes():
    model = on_meta("googlenet", aux_logits=False).eval()
    shapes = {}
    for name in model.trunk:
        getattr(model, name).register_forward_hook(lambda m, i, o, name=name: shapes.__setitem__(name, o.shape[1:]))
    model(torch.empty(1, 3, 224, 224, device="meta"))
    table_1 = {  # the paper's "output size" column
        "conv1": (64, 112, 112), "maxpool1": (64, 56, 56), "conv3": (192, 56, 56), "maxpool2": (192, 28, 28),
        "inception3a": (256, 28, 28), "inception3b": (480, 28, 28), "maxpool3": (480, 14, 14),
        "inception4a": (512, 14, 14), "inception4b": (512, 14, 14), "inception4c": (512, 14, 14),
        "inception4d": (528, 14, 14), "inception4e": (832, 14, 14), "maxpool4": (832, 7, 7),
        "inception5a": (832, 7, 7), "inception5b": (1024, 7, 7), "avgpool": (1024, 1, 1), "fc": (1000,),
    }
    assert {name: tuple(shapes[name]) for name in table_1} == table_1


def test_googlenet_as_published_has_lrn_no_batch_norm_and_the_papers_dropout():
    model = on_meta("googlenet")
    kinds = [type(m) for m in model.modules()]
    assert nn.BatchNorm2d not in kinds
    assert [(m.size, m.alpha, m.beta) for m in model.modules() if isinstance(m, nn.LocalResponseNorm)] == [
        (5, 1e-4, 0.75)] * 2
    assert [n for n in model.trunk if n.startswith("lrn")] == ["lrn1", "lrn2"]
    assert model.dropout.p == 0.4 and model.aux1.dropout.p == 0.7 and model.aux2.dropout.p == 0.7
    assert model.aux1.pool.kernel_size == 5 and model.aux1.pool.stride == 3
    assert model.inception3a.branch3[1].conv.kernel_size == (5, 5)  # torchvision's has (3, 3) here


def test_googlenet_init_follows_the_bvlc_caffe_fillers():
    model = create("googlenet", guard=False)
    conv = model.inception4c.branch2[1].conv  # 128 -> 256, 3×3: xavier bound sqrt(3 / (128·9))
    bound = (3 / (128 * 9)) ** 0.5
    assert conv.weight.abs().max() <= bound and conv.weight.abs().max() > 0.95 * bound
    assert torch.all(conv.bias == 0.2) and torch.all(model.aux1.fc1.bias == 0.2)
    assert torch.all(model.fc.bias == 0) and torch.all(model.aux2.fc2.bias == 0)


def test_googlenet_aux_heads_run_in_training_mode_only():
    model = create("googlenet", num_classes=10, guard=False).train()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 224, 224))
        assert out._fields == ("logits", "aux1", "aux2")
        assert [tuple(t.shape) for t in out] == [(2, 10)] * 3
        assert model.eval()(torch.randn(2, 3, 224, 224)).shape == (2, 10)
    no_aux = create("googlenet", num_classes=10, aux_logits=False, guard=False).train()
    assert not hasattr(no_aux, "aux1")
    with torch.no_grad():
        assert no_aux(torch.randn(2, 3, 64, 64)).shape == (2, 10)


def test_googlenet_torchvision_round_trips():
    assert_round_trip("googlenet_torchvision", torchvision.models.googlenet, torch.randn(2, 3, 64, 64),
                      theirs_only={"init_weights": True}, num_classes=10, aux_logits=True)


def test_googlenet_torchvision_matches_in_training_mode_with_aux_heads():
    torch.manual_seed(0)
    theirs = randomize_batchnorm(torchvision.models.googlenet(num_classes=10, aux_logits=True, init_weights=True))
    ours = create("googlenet_torchvision", num_classes=10, guard=False)
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(2, 3, 64, 64)
    torch.manual_seed(1)
    theirs_out = theirs.train()(x)
    torch.manual_seed(1)  # same dropout masks: both draw them in the same order
    ours_out = ours.train()(x)
    assert torch.equal(ours_out.logits, theirs_out.logits)
    assert torch.equal(ours_out.aux1, theirs_out.aux_logits1)
    assert torch.equal(ours_out.aux2, theirs_out.aux_logits2)


def test_inception_blocks_give_the_lecture_notes_shapes():
    x = torch.randn(1, 256, 28, 28)
    naive, reduced = create("inception_naive", guard=False), create("inception", guard=False)
    with torch.no_grad():
        out_naive, out_reduced = naive(x), reduced(x)
    assert out_naive.shape == (1, 128 + 192 + 96 + 256, 28, 28) == (1, 672, 28, 28)
    assert out_reduced.shape == (1, 128 + 192 + 96 + 64, 28, 28) == (1, 480, 28, 28)
    # filter concatenation: the naive module's last 256 channels are the 3×3/1 max-pool of the input
    assert torch.equal(out_naive[:, -256:], nn.functional.max_pool2d(x, 3, stride=1, padding=1))
    assert n_params(naive) == (256 * 128 + 128) + (256 * 9 * 192 + 192) + (256 * 25 * 96 + 96)
    assert n_params(reduced) == (256 * 128 + 128) + (256 * 64 + 64) * 3 + (64 * 9 * 192 + 192) + (64 * 25 * 96 + 96)
    assert n_params(create("inception", in_channels=192, ch1x1=64, ch3x3red=96, ch3x3=128, ch5x5red=16, ch5x5=32,
                           pool_proj=32)) == n_params(on_meta("googlenet").inception3a)  # Table 1's row 3a


# ---- Highway networks ----------------------------------------------------------------------------


def highway_layer_params(width: int) -> int:
    return 2 * (width * width + width)  # H and T, each weights + biases


@pytest.mark.parametrize("name, kwargs, expected", [
    ("highway_fc", {}, (784 * 50 + 50) + 9 * highway_layer_params(50) + (50 * 10 + 10)),
    ("highway_fc", {"depth": 100}, (784 * 50 + 50) + 99 * highway_layer_params(50) + (50 * 10 + 10)),
    ("plain_fc", {}, (784 * 71 + 71) + 9 * (71 * 71 + 71) + (71 * 10 + 10)),
    # the 19-layer CIFAR-10 network: plain convs 3->32, 32->80, 80->128, highway stages, 1×1 to 100, classifier
    ("highway_conv", {}, (3 * 9 * 32 + 32) + (32 * 9 * 80 + 80) + (80 * 9 * 128 + 128)
     + 4 * 2 * (32 * 9 * 32 + 32) + 5 * 2 * (80 * 9 * 80 + 80) + 5 * 2 * (128 * 9 * 128 + 128)
     + (128 * 100 + 100) + (100 * 10 + 10)),
])
def test_highway_parameter_counts(name, kwargs, expected):
    assert n_params(create(name, **kwargs)) == expected
    if not kwargs:
        assert card(name).params == expected


def test_highway_conv_is_the_papers_2_3m_19_layer_network():
    model = create("highway_conv")
    weight_layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)) and m not in
                     {h.gate for h in model.modules() if isinstance(h, Highway)}]
    assert len(weight_layers) == 19
    assert round(n_params(model) / 1e6, 1) == 2.3


@pytest.mark.parametrize("name", ["highway_fc", "highway_conv"])
def test_transform_gate_bias_starts_negative(name):
    gates = [m.gate for m in create(name).modules() if isinstance(m, Highway)]
    assert gates and all(torch.all(g.bias == -2.0) for g in gates)
    custom = [m.gate for m in create(name, gate_bias=-3.0).modules() if isinstance(m, Highway)]
    assert all(torch.all(g.bias == -3.0) for g in custom)


def test_highway_layer_computes_transform_times_gate_plus_carry():
    layer = Highway(nn.Linear(3, 3), nn.Linear(3, 3), activation="relu", gate_bias=-2.0)
    assert torch.all(layer.gate.bias == -2.0)
    with torch.no_grad():
        layer.transform.weight.copy_(torch.tensor([[1.0, 0, 0], [0, -1, 0], [0, 0, 2]]))
        layer.transform.bias.copy_(torch.tensor([0.5, 0.0, -1.0]))
        layer.gate.weight.zero_()
        layer.gate.bias.copy_(torch.tensor([-2.0, 0.0, 3.0]))
        x = torch.tensor([[1.0, 2.0, 3.0]])
        h = torch.tensor([[1.5, 0.0, 5.0]])  # ReLU(Wx + b) by hand
        t = torch.sigmoid(torch.tensor([[-2.0, 0.0, 3.0]]))
        torch.testing.assert_close(layer(x), h * t + x * (1 - t))
        # the gate's extremes: carry (T -> 0) passes x through, transform (T -> 1) gives H(x)
        layer.gate.bias.fill_(-40.0)
        torch.testing.assert_close(layer(x), x)
        layer.gate.bias.fill_(40.0)
        torch.testing.assert_close(layer(x), h)


def test_deep_highway_fc_starts_close_to_carrying_its_input():
    """At init T = sigmoid(W_T x - 2) is mostly small: a 100-layer stack passes gradients to its first layer."""
    model = create("highway_fc", depth=100)
    out = model(torch.randn(8, 1, 28, 28))
    assert out.shape == (8, 10)
    out.sum().backward()
    assert model.fc1[0].weight.grad.abs().sum() > 0
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def hooked_macs(model: nn.Module, input_shape) -> int:
    """Multiply-accumulates of the convolutions and linear layers of one image, counted with forward
    hooks on the meta device (a second method, independent of the analyzer)."""
    total = 0

    def count(module, inputs, output):
        nonlocal total
        if isinstance(module, nn.Conv2d):
            per_output = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
            total += output[0].numel() * per_output
        elif isinstance(module, nn.Linear):
            total += module.in_features * module.out_features

    for module in model.modules():
        module.register_forward_hook(count)
    model.eval()(torch.empty(1, *input_shape, device="meta"))
    return total


def test_inception_block_macs_against_the_lecture_notes():
    naive, reduced = (hooked_macs(on_meta(name), (256, 28, 28)) for name in ("inception_naive", "inception"))
    assert naive == card("inception_naive").macs and round(naive / 1e6) == 854  # the notes: 854M
    assert reduced == card("inception").macs
    assert round(reduced / 1e6) == 271  # the notes print 358M: the 3×3 convolution's 86.7M counted twice
    assert round((reduced + 28 * 28 * 64 * 9 * 192) / 1e6) == 358


def test_resnet_table_1_flops_are_for_the_papers_stride_placement():
    paper = hooked_macs(on_meta("resnet50", stride_in_1x1=True), (3, 224, 224))
    v1_5 = hooked_macs(on_meta("resnet50"), (3, 224, 224))
    assert paper == pytest.approx(card("resnet50").macs, rel=0.02)  # 3.86 G vs Table 1's "3.8 × 10^9"
    assert v1_5 == pytest.approx(4.089e9, rel=1e-3)  # torchvision's metadata: 4.089 G
