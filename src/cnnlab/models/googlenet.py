"""GoogLeNet (Szegedy et al. 2014) as published, torchvision's batch-norm variant, and the Inception
modules on their own for study.

The network is Table 1 of the paper read as data: a stem, nine Inception modules with the table's
widths, max-pools between the stages, global average pooling, dropout and one classifier. Two
auxiliary classifiers hang off inception4a and inception4d; they run in training mode only, where
the model returns `GoogLeNetOutputs(logits, aux1, aux2)` (the paper adds their losses with weight
0.3); in eval mode it returns the logits alone, as torchvision's GoogLeNet does.
"""

from __future__ import annotations

from collections import OrderedDict, namedtuple
from typing import Callable

from torch import Tensor, nn

from cnnlab.models.inception import ConvReLU, Inception, InceptionNaive
from cnnlab.models.registry import Paper, register

SZEGEDY_2014 = Paper("C. Szegedy, W. Liu, Y. Jia, P. Sermanet, S. Reed, D. Anguelov, D. Erhan, V. Vanhoucke, "
                     "A. Rabinovich", 2014, "Going Deeper with Convolutions")

# Table 1: #1×1, #3×3 reduce, #3×3, #5×5 reduce, #5×5, pool proj; "pool" is a 3×3/2 max-pool
TABLE_1 = (
    ("inception3a", (64, 96, 128, 16, 32, 32)),
    ("inception3b", (128, 128, 192, 32, 96, 64)),
    ("maxpool3", "pool"),
    ("inception4a", (192, 96, 208, 16, 48, 64)),
    ("inception4b", (160, 112, 224, 24, 64, 64)),
    ("inception4c", (128, 128, 256, 24, 64, 64)),
    ("inception4d", (112, 144, 288, 32, 64, 64)),
    ("inception4e", (256, 160, 320, 32, 128, 128)),
    ("maxpool4", "pool"),
    ("inception5a", (256, 160, 320, 32, 128, 128)),
    ("inception5b", (384, 192, 384, 48, 128, 128)),
)
AUX_TAPS = {"inception4a": "aux1", "inception4d": "aux2"}  # where the auxiliary classifiers branch off

GoogLeNetOutputs = namedtuple("GoogLeNetOutputs", ["logits", "aux1", "aux2"])


def stride2_max_pool(kernel_size: int = 3) -> nn.MaxPool2d:
    """Caffe rounds pooled sizes up: 112 → 56 → 28 → 14 → 7 as in Table 1."""
    return nn.MaxPool2d(kernel_size, stride=2, ceil_mode=True)


def lrn() -> nn.LocalResponseNorm:
    """As in the BVLC Caffe GoogLeNet (n = 5, alpha = 1e-4 in the alpha/n form, beta = 0.75, k = 1)."""
    return nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0)


class AuxClassifier(nn.Sequential):
    """Section 5: average pool (5×5/3 → 4×4), 1×1 conv 128 + ReLU, FC 1024 + ReLU, dropout 0.7, FC."""

    def __init__(self, in_channels: int, num_classes: int, pool: nn.Module, batch_norm: bool = False):
        super().__init__(OrderedDict(
            pool=pool,
            conv=ConvReLU(in_channels, 128, 1, batch_norm=batch_norm),
            flatten=nn.Flatten(1),
            fc1=nn.Linear(128 * 4 * 4, 1024),
            relu=nn.ReLU(inplace=True),
            dropout=nn.Dropout(0.7),
            fc2=nn.Linear(1024, num_classes),
        ))


class GoogLeNet(nn.Module):
    """The trunk is a list of named layers run in order; the auxiliary heads tap it by name."""

    def __init__(self, *, num_classes: int, in_channels: int, aux_logits: bool, batch_norm: bool, stem_lrn: bool,
                 kernel_5x5: int, last_pool: int, dropout: float, aux_pool: Callable[[], nn.Module]):
        super().__init__()
        self.aux_logits = aux_logits
        self.trunk: tuple[str, ...] = ()  # names of the main path's layers, in order
        add = self._add_to_trunk
        add("conv1", ConvReLU(in_channels, 64, 7, stride=2, padding=3, batch_norm=batch_norm))
        add("maxpool1", stride2_max_pool())
        if stem_lrn:
            add("lrn1", lrn())
        add("conv2", ConvReLU(64, 64, 1, batch_norm=batch_norm))
        add("conv3", ConvReLU(64, 192, 3, padding=1, batch_norm=batch_norm))
        if stem_lrn:
            add("lrn2", lrn())
        add("maxpool2", stride2_max_pool())
        channels = 192
        for name, widths in TABLE_1:
            if widths == "pool":
                add(name, stride2_max_pool(last_pool if name == "maxpool4" else 3))
                continue
            module = add(name, Inception(channels, *widths, batch_norm=batch_norm, kernel_5x5=kernel_5x5))
            channels = module.out_channels
            if aux_logits and name in AUX_TAPS:  # registered next to its tap, off the trunk
                self.add_module(AUX_TAPS[name], AuxClassifier(channels, num_classes, aux_pool(), batch_norm))
        add("avgpool", nn.AdaptiveAvgPool2d(1))  # = the paper's 7×7/1 average pool at 224×224
        add("flatten", nn.Flatten(1))
        add("dropout", nn.Dropout(dropout))
        add("fc", nn.Linear(channels, num_classes))

    def _add_to_trunk(self, name: str, layer: nn.Module) -> nn.Module:
        self.add_module(name, layer)
        self.trunk += (name,)
        return layer

    def forward(self, x: Tensor) -> Tensor | GoogLeNetOutputs:
        aux = []
        for name in self.trunk:
            x = getattr(self, name)(x)
            if self.aux_logits and self.training and name in AUX_TAPS:
                aux.append(getattr(self, AUX_TAPS[name])(x))
        return GoogLeNetOutputs(x, *aux) if aux else x


def caffe_xavier_init(model: nn.Module) -> None:
    """The BVLC Caffe GoogLeNet's fillers (the paper states none): 'xavier' weights, uniform within
    ±sqrt(3 / fan_in); bias 0.2 in every convolution and hidden FC layer, 0 in the classifiers."""
    classifiers = {model.fc, *(head.fc2 for head in model.children() if isinstance(head, AuxClassifier))}
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_uniform_(module.weight, nonlinearity="linear")  # gain 1: sqrt(3 / fan_in)
            nn.init.constant_(module.bias, 0.0 if module in classifiers else 0.2)


def torchvision_init(model: nn.Module) -> None:
    """torchvision's `init_weights=True`: truncated normal (std 0.01) weights, BN 1/0; Linear biases
    keep PyTorch's default."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.trunc_normal_(module.weight, mean=0.0, std=0.01, a=-2, b=2)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


@register(
    "googlenet", aliases=("inception_v1",), family="GoogLeNet", paper=SZEGEDY_2014, input_shape=(3, 224, 224),
    num_classes=1000, params=6_998_552, macs=1_500_000_000,
    published_error="top-5 10.07% single model, 1 crop (ILSVRC 2012 val; Table 3); 6.67% for the 7-model, "
    "144-crop ensemble (ILSVRC 2014 test)",
    init="paper: unstated; here the BVLC Caffe model's: xavier uniform sqrt(3/fan_in), bias 0.2 (0 in classifiers)",
    notes="params count the inference network; the two auxiliary classifiers (training only) add 6,379,728 "
    "(13,378,280 as built with aux_logits=True). The paper's Table 1 params column sums to about 6.8M: weights "
    "only, in units of 1,024, some rows off (docs/models-modern.md). macs: the paper's design budget "
    "'1.5 billion multiply-adds'. Training mode returns (logits, aux1, aux2): loss = CE + 0.3·(CE1 + CE2); "
    "the auxiliary heads' fixed 5×5/3 pool and 2048-input FC need inputs of about 224×224 in training mode",
)
def googlenet(num_classes: int = 1000, in_channels: int = 3, aux_logits: bool = True) -> GoogLeNet:
    """As published: no batch norm, LRN in the stem, Table 1 widths, dropout 0.4, aux heads with 5×5/3 pools."""
    model = GoogLeNet(num_classes=num_classes, in_channels=in_channels, aux_logits=aux_logits, batch_norm=False,
                      stem_lrn=True, kernel_5x5=5, last_pool=3, dropout=0.4, aux_pool=lambda: nn.AvgPool2d(5, stride=3))
    caffe_xavier_init(model)
    return model


@register(
    "googlenet_torchvision", family="GoogLeNet", paper=SZEGEDY_2014, input_shape=(3, 224, 224), num_classes=1000,
    params=6_624_904, macs=1_498_000_000,
    published_error="top-1 30.22%, top-5 10.47% (ImageNet val, 1 crop; torchvision's ported weights)",
    init="torchvision init_weights=True: truncated normal std 0.01, BN weight 1 bias 0",
    notes="torchvision's GoogLeNet: BN after every convolution, no LRN, a 3×3 kernel in the '5×5' branch, "
    "2×2 max-pool before 5a, dropout 0.2, aux heads pool adaptively to 4×4. State dict interchangeable with "
    "torchvision.models.googlenet(aux_logits=...); params count the inference network (aux heads add 6,379,984); "
    "macs from torchvision's weights metadata",
)
def googlenet_torchvision(num_classes: int = 1000, in_channels: int = 3, aux_logits: bool = True) -> GoogLeNet:
    model = GoogLeNet(num_classes=num_classes, in_channels=in_channels, aux_logits=aux_logits, batch_norm=True,
                      stem_lrn=False, kernel_5x5=3, last_pool=2, dropout=0.2, aux_pool=lambda: nn.AdaptiveAvgPool2d(4))
    torchvision_init(model)
    return model


LECTURE_EXAMPLE = "the lecture notes' example: 256×28×28 input"


@register(
    "inception_naive", family="GoogLeNet (block)", paper=SZEGEDY_2014, input_shape=(256, 28, 28), num_classes=0,
    params=128 * 256 + 128 + 192 * 256 * 9 + 192 + 96 * 256 * 25 + 96,
    macs=28 * 28 * 256 * (128 + 192 * 9 + 96 * 25),  # 854,196,224: the notes' "854M ops"
    init="PyTorch's default (a block for study, not trained on its own)",
    notes=f"Fig. 2(a), a building block (output 672×28×28, not class scores); defaults are {LECTURE_EXAMPLE}, "
    "1×1 128, 3×3 192, 5×5 96, 3×3 max-pool",
)
def inception_naive(in_channels: int = 256, ch1x1: int = 128, ch3x3: int = 192, ch5x5: int = 96) -> InceptionNaive:
    return InceptionNaive(in_channels, ch1x1, ch3x3, ch5x5)


@register(
    "inception", family="GoogLeNet (block)", paper=SZEGEDY_2014, input_shape=(256, 28, 28), num_classes=0,
    params=(128 * 256 + 128) + (64 * 256 + 64) + (192 * 64 * 9 + 192) + (64 * 256 + 64) + (96 * 64 * 25 + 96)
    + (64 * 256 + 64),
    macs=28 * 28 * (256 * (128 + 64 + 64 + 64) + 64 * (192 * 9 + 96 * 25)),  # 271,351,808, not the notes' 358M
    init="PyTorch's default (a block for study, not trained on its own)",
    notes=f"Fig. 2(b), a building block (output 480×28×28, not class scores); defaults are {LECTURE_EXAMPLE}, "
    "1×1 128; 64 → 3×3 192; 64 → 5×5 96; pool → 64",
)
def inception(in_channels: int = 256, ch1x1: int = 128, ch3x3red: int = 64, ch3x3: int = 192, ch5x5red: int = 64,
              ch5x5: int = 96, pool_proj: int = 64) -> Inception:
    """Widths in Table 1's column order: #1×1, #3×3 reduce, #3×3, #5×5 reduce, #5×5, pool proj."""
    return Inception(in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj)
