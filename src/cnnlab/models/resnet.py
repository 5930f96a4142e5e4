"""ResNets (He et al. 2015): a residual block type plus stage sizes.

One `ResNet` class builds every variant in the paper:

- ImageNet models (Table 1): a 7×7/2 stem and max-pool, four stages of 64/128/256/512 planes,
  basic blocks (18, 34) or bottleneck blocks (50, 101, 152). Layer names are torchvision's, so a
  state dict moves between the two unchanged.
- CIFAR-10 models (Section 4.2): a 3×3 stem, three stages of 16/32/64 filters with n blocks each
  (depth 6n + 2), global average pooling, 10 classes.
- plain twins: the same stacks with the shortcuts removed (the degradation experiment).

Shortcut options (Section 3.3): "A" zero-pads new channels (parameter-free), "B" projects with a
1×1 convolution only where the shape changes, "C" projects in every block; None = plain network.
"""

from __future__ import annotations

from collections import OrderedDict

import torch.nn.functional as F
from torch import Tensor, nn

from cnnlab.errors import CnnlabError
from cnnlab.models.layers import DeformableConv2d
from cnnlab.models.registry import Paper, register

HE_2015 = Paper("K. He, X. Zhang, S. Ren, J. Sun", 2015, "Deep Residual Learning for Image Recognition")
SHORTCUTS = ("A", "B", "C", None)


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


def conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)


class ZeroPadShortcut(nn.Module):
    """Option A: keep every `stride`-th pixel and append zero channels. No parameters, so the
    residual and plain networks have exactly the same parameter count."""

    def __init__(self, stride: int, extra_channels: int):
        super().__init__()
        self.stride = stride
        self.extra_channels = extra_channels

    def forward(self, x: Tensor) -> Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.extra_channels))

    def extra_repr(self) -> str:
        return f"stride={self.stride}, extra_channels={self.extra_channels}"


def make_shortcut(option: str | None, in_channels: int, out_channels: int, stride: int) -> nn.Module | None:
    """The shortcut module for one block; None means the identity (or, for plain nets, nothing)."""
    shape_changes = stride != 1 or in_channels != out_channels
    if option == "C" or (option == "B" and shape_changes):
        return nn.Sequential(conv1x1(in_channels, out_channels, stride), nn.BatchNorm2d(out_channels))
    if option == "A" and shape_changes:
        return ZeroPadShortcut(stride, out_channels - in_channels)
    return None


class ResidualBlock(nn.Module):
    """What every block shares: out = ReLU(F(x) + shortcut(x)), or ReLU(F(x)) in a plain network.

    Subclasses register their layers in torchvision's order and names (they are state-dict keys):
    the shortcut is `downsample`, None meaning the identity.
    """

    expansion = 1
    relu: nn.ReLU
    downsample: nn.Module | None
    residual: bool

    def finish(self, out: Tensor, x: Tensor) -> Tensor:
        if self.residual:
            out = out + (x if self.downsample is None else self.downsample(x))
        return self.relu(out)


class BasicBlock(ResidualBlock):
    """Two 3×3 convolutions (ResNet-18/34 and the CIFAR nets)."""

    def __init__(self, in_channels: int, planes: int, stride: int = 1, downsample=None, residual=True):
        super().__init__()
        self.conv1 = conv3x3(in_channels, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.residual = residual

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        return self.finish(self.bn2(self.conv2(out)), x)


class Bottleneck(ResidualBlock):
    """1×1 reduce, 3×3, 1×1 expand ×4 (ResNet-50/101/152; with `groups` > 1, ResNeXt's block).

    The stride sits in the 3×3 convolution as in torchvision ("ResNet v1.5"); the paper's Caffe
    models put it in the first 1×1 (`stride_in_1x1=True`). The parameters are the same either way.
    ResNeXt (Xie et al. 2017, Fig. 3c) widens the inner layers to `groups` × `base_width` · planes/64
    channels and splits the 3×3 into `groups` paths (its "cardinality"), as torchvision computes it.
    """

    expansion = 4

    def __init__(self, in_channels, planes, stride=1, downsample=None, residual=True, stride_in_1x1=False,
                 groups=1, base_width=64):
        super().__init__()
        stride_1x1, stride_3x3 = (stride, 1) if stride_in_1x1 else (1, stride)
        width = int(planes * base_width / 64) * groups
        self.conv1 = conv1x1(in_channels, width, stride_1x1)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride_3x3, padding=1, groups=groups, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.residual = residual

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.finish(self.bn3(self.conv3(out)), x)


class ResNet(nn.Sequential):
    """stem → stages (`layer1`…) → global average pool → `fc`, as named children in order."""

    def __init__(
        self,
        block: type[ResidualBlock],
        stage_sizes: tuple[int, ...],
        widths: tuple[int, ...],
        *,
        imagenet_stem: bool,
        shortcut: str | None,
        num_classes: int,
        in_channels: int = 3,
        stride_in_1x1: bool = False,
        groups: int = 1,
        width_per_group: int = 64,
    ):
        if shortcut not in SHORTCUTS:
            raise CnnlabError(f"shortcut must be one of {', '.join(map(str, SHORTCUTS))}, got {shortcut!r}")
        if stride_in_1x1 and block is not Bottleneck:
            raise CnnlabError("stride_in_1x1 places a bottleneck block's stride; this network has basic blocks")
        block_options = {"stride_in_1x1": True} if stride_in_1x1 else {}
        if (groups, width_per_group) != (1, 64):
            block_options.update(groups=groups, base_width=width_per_group)
        layers = OrderedDict()
        kernel, stride, padding = (7, 2, 3) if imagenet_stem else (3, 1, 1)
        layers["conv1"] = nn.Conv2d(in_channels, widths[0], kernel, stride, padding, bias=False)
        layers["bn1"] = nn.BatchNorm2d(widths[0])
        layers["relu"] = nn.ReLU(inplace=True)
        if imagenet_stem:
            layers["maxpool"] = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        channels = widths[0]
        for index, (planes, blocks) in enumerate(zip(widths, stage_sizes)):
            stage = []
            for position in range(blocks):
                stride = 2 if index > 0 and position == 0 else 1
                out_channels = planes * block.expansion
                downsample = make_shortcut(shortcut, channels, out_channels, stride)
                stage.append(block(channels, planes, stride, downsample, shortcut is not None, **block_options))
                channels = out_channels
            layers[f"layer{index + 1}"] = nn.Sequential(*stage)
        layers["avgpool"] = nn.AdaptiveAvgPool2d(1)
        layers["flatten"] = nn.Flatten(1)
        layers["fc"] = nn.Linear(channels, num_classes)
        super().__init__(layers)
        he_init(self)


def he_init(model: nn.Module) -> None:
    """He et al. 2015b normal init for convolutions (fan-out mode, as torchvision), BN γ=1 β=0;
    the final Linear keeps PyTorch's default, as in torchvision."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


def lua_torch_init(model: nn.Module) -> None:
    """The Lua Torch ResNet code's init (fb.resnet.torch, which the pre-activation ResNet, Wide ResNet
    and DenseNet authors built on): convolutions N(0, 2/(k·k·out)) (He normal, fan-out), BN weight 1
    bias 0, and every Linear bias 0 (its weight keeps the framework default)."""
    he_init(model)
    for module in model.modules():
        if isinstance(module, nn.Linear):
            nn.init.zeros_(module.bias)


def make_deformable(stage: nn.Sequential) -> None:
    """Dai et al. 2017's use of deformable convolution: every 3×3 convolution of `stage` (a ResNet's
    last stage, "res5") becomes a `DeformableConv2d` with the same weights and zero offsets, so the
    network starts as the plain one and learns where to sample."""
    for block in stage:
        for name, conv in list(block.named_children()):
            if isinstance(conv, nn.Conv2d) and conv.kernel_size == (3, 3):
                setattr(block, name, DeformableConv2d.like(conv))


# ---- the zoo: the paper's tables as data ---------------------------------------------------------

HE_INIT = "He et al. 2015b normal (fan_out, as torchvision); BN weight 1, bias 0; fc: PyTorch default"
IMAGENET_WIDTHS = (64, 128, 256, 512)
CIFAR_WIDTHS = (16, 32, 64)
TEN_CROP = "ImageNet val, 10-crop"

# depth: (block, blocks per stage, parameters, Table 1 multiply-adds, published error)
IMAGENET = {
    18: (BasicBlock, (2, 2, 2, 2), 11_689_512, 1_800_000_000, f"top-1 27.88% ({TEN_CROP}, option A; Table 2)"),
    34: (BasicBlock, (3, 4, 6, 3), 21_797_672, 3_600_000_000, f"top-1 24.52%, top-5 7.46% ({TEN_CROP}; Table 3)"),
    50: (Bottleneck, (3, 4, 6, 3), 25_557_032, 3_800_000_000, f"top-1 22.85%, top-5 6.71% ({TEN_CROP}; Table 3)"),
    101: (Bottleneck, (3, 4, 23, 3), 44_549_160, 7_600_000_000, f"top-1 21.75%, top-5 6.05% ({TEN_CROP}; Table 3)"),
    152: (Bottleneck, (3, 8, 36, 3), 60_192_808, 11_300_000_000, f"top-1 21.43%, top-5 5.71% ({TEN_CROP}; Table 3)"),
}
# depth: (parameters: resnet's minus its projection shortcuts, published error)
PLAIN_IMAGENET = {
    18: (11_515_688, f"top-1 27.94% ({TEN_CROP}; Table 2)"),
    34: (21_623_848, f"top-1 28.54% ({TEN_CROP}; Table 2)"),
}
# depth 6n+2: (parameters, CIFAR-10 test error from Table 6)
CIFAR = {
    20: (269_722, "8.75% (CIFAR-10 test; Table 6)"),
    32: (464_154, "7.51% (CIFAR-10 test; Table 6)"),
    44: (658_586, "7.17% (CIFAR-10 test; Table 6)"),
    56: (853_018, "6.97% (CIFAR-10 test; Table 6)"),
    110: (1_727_962, "6.43% best of 5 runs, 6.61±0.16% mean (CIFAR-10 test; Table 6)"),
    1202: (19_421_274, "7.93% (CIFAR-10 test; Table 6: overfits, says the paper)"),
}
PLAIN_CIFAR = (20, 32, 44, 56, 110)


def _imagenet_builder(block, stages, residual):
    def build(num_classes: int = 1000, in_channels: int = 3, shortcut: str | None = "B", stride_in_1x1: bool = False):
        """stride_in_1x1=True puts a bottleneck's stride in its first 1×1 convolution, as the paper."""
        return ResNet(block, stages, IMAGENET_WIDTHS, imagenet_stem=True, shortcut=shortcut if residual else None,
                      num_classes=num_classes, in_channels=in_channels, stride_in_1x1=stride_in_1x1)

    return build


def _cifar_builder(depth, residual):
    n = (depth - 2) // 6

    def build(num_classes: int = 10, in_channels: int = 3, shortcut: str | None = "A"):
        return ResNet(BasicBlock, (n, n, n), CIFAR_WIDTHS, imagenet_stem=False,
                      shortcut=shortcut if residual else None, num_classes=num_classes, in_channels=in_channels)

    return build


def _imagenet_notes(block, stages) -> str:
    notes = f"{block.__name__} stages {stages}; projection shortcuts (option B) where the shape changes"
    if block is Bottleneck:
        notes += "; stride in the 3×3 as torchvision (v1.5), stride_in_1x1=True for the paper's placement"
    return notes + "; state dict interchangeable with torchvision's"


for _depth, (_block, _stages, _params, _macs, _error) in IMAGENET.items():
    register(
        f"resnet{_depth}", family="ResNet", paper=HE_2015, input_shape=(3, 224, 224), num_classes=1000,
        params=_params, macs=_macs, published_error=_error, init=HE_INIT, notes=_imagenet_notes(_block, _stages),
    )(_imagenet_builder(_block, _stages, residual=True))

for _depth, (_params, _error) in PLAIN_IMAGENET.items():
    _block, _stages, _, _macs, _ = IMAGENET[_depth]
    register(
        f"plain{_depth}", family="ResNet (plain)", paper=HE_2015, input_shape=(3, 224, 224), num_classes=1000,
        params=_params, macs=_macs, published_error=_error, init=HE_INIT,
        notes=f"resnet{_depth} without shortcuts (Fig. 3 middle): the degradation baseline",
    )(_imagenet_builder(_block, _stages, residual=False))

for _depth, (_params, _error) in CIFAR.items():
    register(
        f"resnet{_depth}", family="ResNet (CIFAR)", paper=HE_2015, input_shape=(3, 32, 32), num_classes=10,
        params=_params, published_error=_error, init=HE_INIT,
        notes=f"n={(_depth - 2) // 6} basic blocks per stage at 16/32/64 filters (Section 4.2); "
        "option A shortcuts (zero-padding, parameter-free)",
    )(_cifar_builder(_depth, residual=True))

for _depth in PLAIN_CIFAR:
    register(
        f"plain{_depth}", family="ResNet (CIFAR, plain)", paper=HE_2015, input_shape=(3, 32, 32), num_classes=10,
        params=CIFAR[_depth][0], init=HE_INIT,
        notes=f"resnet{_depth} without shortcuts, same parameters (option A adds none); "
        "Fig. 6 left: the deeper plain net trains worse",
    )(_cifar_builder(_depth, residual=False))


# ---- what grew from them: ResNeXt and the deformable ResNets ------------------------------------

XIE_2017 = Paper("S. Xie, R. Girshick, P. Dollár, Z. Tu, K. He", 2017,
                 "Aggregated Residual Transformations for Deep Neural Networks")
DAI_2017 = Paper("J. Dai, H. Qi, Y. Xiong, Y. Li, G. Zhang, H. Hu, Y. Wei", 2017, "Deformable Convolutional Networks")
# name: (cardinality, width of each path in stage 1, parameters, Table 1 FLOPs (multiply-adds), Table 3 top-1)
RESNEXT = {"resnext50_32x4d": (32, 4, 25_028_904, 4_200_000_000, "22.2%")}


def _resnext_builder(groups, width):
    def build(num_classes: int = 1000, in_channels: int = 3):
        _, stages, *_ = IMAGENET[50]
        return ResNet(Bottleneck, stages, IMAGENET_WIDTHS, imagenet_stem=True, shortcut="B", num_classes=num_classes,
                      in_channels=in_channels, groups=groups, width_per_group=width)

    return build


for _name, (_groups, _width, _params, _macs, _top1) in RESNEXT.items():
    register(
        _name, family="ResNeXt", paper=XIE_2017, input_shape=(3, 224, 224), num_classes=1000, params=_params,
        macs=_macs, published_error=f"top-1 {_top1} (ImageNet val, 224×224 single crop; Table 3)", init=HE_INIT,
        notes=f"ResNet-50's stages with {_groups} paths of {_width} channels in each 3×3 (a grouped convolution, "
        "Fig. 3c); stride in the 3×3; state dict interchangeable with torchvision's resnext50_32x4d",
    )(_resnext_builder(_groups, _width))


def _deform_params(in_channels: int) -> int:
    """The offset branch of one 3×3 deformable convolution: 18 output channels (Δy, Δx per tap), bias."""
    return 2 * 9 * in_channels * 9 + 2 * 9


DEFORM_INIT = HE_INIT + "; the offset convolutions start at zero (the regular grid), as in the paper"


@register(
    "resnet50_deform", family="ResNet (deformable)", paper=DAI_2017, input_shape=(3, 224, 224), num_classes=1000,
    params=IMAGENET[50][2] + 3 * _deform_params(512), init=DEFORM_INIT,
    notes="ResNet-50 (torchvision layout) whose last stage's three 3×3 convolutions (res5a-c) are deformable, "
    "the paper's choice for its ResNet backbones; the paper trains detection and segmentation and reports no "
    "ImageNet classification error for it. Each offset branch adds 512·9·18 + 18 = 82,962 parameters. Loads "
    "torchvision's resnet50 weights (strict=False: the offsets are the only missing keys) and then computes "
    "exactly what resnet50 computes until the offsets are trained",
)
def resnet50_deform(num_classes: int = 1000, in_channels: int = 3) -> ResNet:
    model = _imagenet_builder(Bottleneck, IMAGENET[50][1], residual=True)(num_classes, in_channels)
    make_deformable(model.layer4)
    return model


@register(
    "resnet20_deform", family="ResNet (CIFAR, deformable)", paper=DAI_2017, input_shape=(3, 32, 32), num_classes=10,
    params=CIFAR[20][0] + _deform_params(32) + 5 * _deform_params(64), init=DEFORM_INIT,
    notes="cnnlab's small deformable network, not one of the paper's: resnet20 with every 3×3 convolution of its "
    "last stage (8×8 maps, 64 filters) deformable, the paper's rule (deform the last stage) at a size that trains "
    "on a CPU; option A shortcuts as resnet20",
)
def resnet20_deform(num_classes: int = 10, in_channels: int = 3) -> ResNet:
    model = _cifar_builder(20, residual=True)(num_classes, in_channels)
    make_deformable(model.layer3)
    return model
