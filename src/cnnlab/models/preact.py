"""Pre-activation ResNets (He et al. 2016b) and Wide ResNets (Zagoruyko & Komodakis 2016) for CIFAR.

"Identity Mappings in Deep Residual Networks" moves batch norm and ReLU in front of each weight layer
(BN → ReLU → conv, "full pre-activation", Fig. 4e) and leaves the shortcut a pure identity: nothing
follows the addition, so x_L = x_l + Σ F(x_i) holds from any unit to any deeper one. A Wide ResNet
is the same basic unit made wider (k × the channels) and shallower, with dropout between its two
convolutions.

Both follow the authors' released Torch code (KaimingHe/resnet-1k-layers, szagoruyko/
wide-residual-networks): a 3×3 convolution of 16 filters, three stages at 32×32, 16×16 and 8×8, then
BN → ReLU → global average pooling → the classifier. Where a unit changes the shape, its BN → ReLU is
shared by both paths and the shortcut is a 1×1 convolution (no BN) of the activated input; elsewhere
the shortcut is the identity. Convolutions have no bias. A bottleneck unit has its stride in the first
1×1 convolution, as in that code.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import Tensor, nn

from cnnlab.models.registry import Paper, register
from cnnlab.models.resnet import conv1x1, conv3x3, lua_torch_init

HE_2016 = Paper("K. He, X. Zhang, S. Ren, J. Sun", 2016, "Identity Mappings in Deep Residual Networks")
ZAGORUYKO_2016 = Paper("S. Zagoruyko, N. Komodakis", 2016, "Wide Residual Networks")
STEM_WIDTH = 16


class PreActUnit(nn.Module):
    """What every pre-activation unit shares: out = F(BN-ReLU(x)) + shortcut, nothing after the sum.

    Subclasses build `residual(activated)`; `downsample` is the 1×1 projection where the shape
    changes (None: identity). With a projection, the shortcut reads the activated input too.
    """

    bn1: nn.BatchNorm2d
    relu: nn.ReLU
    downsample: nn.Module | None

    def forward(self, x: Tensor) -> Tensor:
        activated = self.relu(self.bn1(x))
        shortcut = x if self.downsample is None else self.downsample(activated)
        return self.residual(activated) + shortcut

    def residual(self, activated: Tensor) -> Tensor:
        raise NotImplementedError


def projection(in_channels: int, out_channels: int, stride: int) -> nn.Conv2d | None:
    return conv1x1(in_channels, out_channels, stride) if stride != 1 or in_channels != out_channels else None


class PreActBasic(PreActUnit):
    """BN-ReLU-conv3×3 → BN-ReLU-(dropout)-conv3×3 (ResNet-110 pre-act; a Wide ResNet unit)."""

    expansion = 1

    def __init__(self, in_channels: int, planes: int, stride: int = 1, dropout: float = 0.0):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv1 = conv3x3(in_channels, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.dropout = nn.Dropout(dropout) if dropout else None
        self.conv2 = conv3x3(planes, planes)
        self.downsample = projection(in_channels, planes, stride)

    def residual(self, activated: Tensor) -> Tensor:
        out = self.relu(self.bn2(self.conv1(activated)))
        if self.dropout is not None:
            out = self.dropout(out)
        return self.conv2(out)


class PreActBottleneck(PreActUnit):
    """BN-ReLU-conv1×1 (stride) → BN-ReLU-conv3×3 → BN-ReLU-conv1×1 ×4 (ResNet-164, ResNet-1001)."""

    expansion = 4

    def __init__(self, in_channels: int, planes: int, stride: int = 1, dropout: float = 0.0):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv1 = conv1x1(in_channels, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes)
        self.bn3 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.downsample = projection(in_channels, planes * self.expansion, stride)

    def residual(self, activated: Tensor) -> Tensor:
        out = self.relu(self.bn2(self.conv1(activated)))
        out = self.relu(self.bn3(self.conv2(out)))
        return self.conv3(out)


class PreActResNet(nn.Sequential):
    """conv1 → layer1…3 → bn → relu → avgpool → flatten → fc, as named children in order."""

    def __init__(self, unit: type[PreActUnit], units_per_stage: int, widths: tuple[int, ...], *, num_classes: int,
                 in_channels: int = 3, dropout: float = 0.0):
        layers = OrderedDict(conv1=conv3x3(in_channels, STEM_WIDTH))
        channels = STEM_WIDTH
        for index, planes in enumerate(widths):
            stage = []
            for position in range(units_per_stage):
                stride = 2 if index > 0 and position == 0 else 1
                stage.append(unit(channels, planes, stride, dropout))
                channels = planes * unit.expansion
            layers[f"layer{index + 1}"] = nn.Sequential(*stage)
        layers["bn"] = nn.BatchNorm2d(channels)
        layers["relu"] = nn.ReLU(inplace=True)
        layers["avgpool"] = nn.AdaptiveAvgPool2d(1)  # the authors' 8×8 average pool at 32×32
        layers["flatten"] = nn.Flatten(1)
        layers["fc"] = nn.Linear(channels, num_classes)
        super().__init__(layers)
        lua_torch_init(self)


INIT = "as the authors' Torch code: conv He normal (fan_out), BN weight 1 bias 0, fc bias 0 (weight: framework default)"
CIFAR_WIDTHS = (16, 32, 64)

# depth: (unit, units per stage, parameters, CIFAR-10 / CIFAR-100 test error of the pre-activation version)
PREACT = {
    110: (PreActBasic, 18, 1_730_522, "6.37% (CIFAR-10 test; Table 2, full pre-activation)"),
    164: (PreActBottleneck, 18, 1_703_258, "5.46% (CIFAR-10 test), 24.33% (CIFAR-100); Table 3"),
    1001: (PreActBottleneck, 111, 10_327_706,
           "4.92% median, 4.89±0.14% mean of 5 runs (CIFAR-10 test), 22.71% (CIFAR-100); Table 3 "
           "(4.62% with batch 64, the authors' code)"),
}

# (depth, widening factor k): (parameters, test error: CIFAR-10 / CIFAR-100, mean/std-normalised inputs)
WIDE = {
    (28, 10): (36_479_194, "4.00% (CIFAR-10 test), 19.25% (CIFAR-100); median of 5 runs (Table 5; 3.89% with dropout 0.3)"),
    (16, 8): (10_961_370, "4.27% (CIFAR-10 test), 20.43% (CIFAR-100); median of 5 runs (Table 5)"),
}


def _preact_builder(unit, n):
    def build(num_classes: int = 10, in_channels: int = 3):
        return PreActResNet(unit, n, CIFAR_WIDTHS, num_classes=num_classes, in_channels=in_channels)

    return build


def _wide_builder(depth, k):
    n = (depth - 4) // 6

    def build(num_classes: int = 10, in_channels: int = 3, dropout: float = 0.0):
        """dropout: between the two convolutions of every unit (the paper's best results use 0.3)."""
        return PreActResNet(PreActBasic, n, tuple(k * w for w in CIFAR_WIDTHS), num_classes=num_classes,
                            in_channels=in_channels, dropout=dropout)

    return build


for _depth, (_unit, _n, _params, _error) in PREACT.items():
    register(
        f"preact_resnet{_depth}", family="ResNet (CIFAR, pre-activation)", paper=HE_2016, input_shape=(3, 32, 32),
        num_classes=10, params=_params, published_error=_error, init=INIT,
        notes=f"{_n} {'bottleneck' if _unit is PreActBottleneck else 'basic'} pre-activation units per stage at "
        f"{'/'.join(str(w * _unit.expansion) for w in CIFAR_WIDTHS)} channels (depth "
        f"{'9' if _unit is PreActBottleneck else '6'}n+2); projection shortcuts only where the shape changes, "
        "as the authors' code" + ("; the paper's '10.2M' counts 10,178,490 weights, leaving out the 149,216 "
                                  "batch-norm parameters" if _depth == 1001 else ""),
    )(_preact_builder(_unit, _n))

for (_depth, _k), (_params, _error) in WIDE.items():
    register(
        f"wrn{_depth}_{_k}", aliases=(f"wrn-{_depth}-{_k}",), family="Wide ResNet", paper=ZAGORUYKO_2016,
        input_shape=(3, 32, 32), num_classes=10, params=_params, published_error=_error, init=INIT,
        notes=f"WRN-{_depth}-{_k}: {(_depth - 4) // 6} basic pre-activation units per stage at "
        f"{'/'.join(str(_k * w) for w in CIFAR_WIDTHS)} channels (depth = 6n + 4); dropout=0 by default "
        "(the table's number)",
    )(_wide_builder(_depth, _k))
