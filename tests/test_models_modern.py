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


def assert_round_trip(name: str, theirs_builder, x: torch.Tensor, **kwargs):
    """torchvision's random model -> ours -> identical outputs, and our random model -> theirs."""
    torch.manual_seed(0)
    theirs = randomize_batchnorm(theirs_builder(**kwargs)).eval()
    ours = transfer(theirs, on_meta(name, **kwargs)).eval()
    with torch.no_grad():
        assert torch.equal(ours(x), theirs(x))

    ours = randomize_batchnorm(create(name, guard=False, **kwargs), seed=1).eval()
    with torch.device("meta"):
        theirs = theirs_builder(**kwargs)
    theirs = transfer(ours, theirs).eval()
    with torch.no_grad():
        assert torch.equal(theirs(x), ours(x))


@pytest.mark.parametrize("name", ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"])
def test_resnet_round_trips_with_torchvision(name):
    assert_round_trip(name, getattr(torchvision.models, name), torch.randn(1, 3, 32, 32), num_classes=10)


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
