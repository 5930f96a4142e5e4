"""LeNet-5: the modern textbook version and the 1998 network exactly as LeCun et al. published it.

Layer names follow the paper's figure 2 (C1, S2, C3, S4, C5/F5, F6, output), so the analyzer's
rows and the state-dict keys read like the paper.
"""

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.models.registry import Paper, register

LECUN_1998 = Paper(
    "Y. LeCun, L. Bottou, Y. Bengio, P. Haffner",
    1998,
    "Gradient-Based Learning Applied to Document Recognition",
)


class LeNet5(nn.Module):
    """The LeNet-5 most courses teach: ReLU, max pooling, C5 as a 400 -> 120 linear layer."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1):
        super().__init__()
        self.features = nn.Sequential(OrderedDict(
            c1=nn.Conv2d(in_channels, 6, kernel_size=5),    # 32x32 -> 6@28x28
            relu1=nn.ReLU(inplace=True),
            s2=nn.MaxPool2d(2),                             # -> 6@14x14
            c3=nn.Conv2d(6, 16, kernel_size=5),             # -> 16@10x10
            relu3=nn.ReLU(inplace=True),
            s4=nn.MaxPool2d(2),                             # -> 16@5x5
        ))
        self.classifier = nn.Sequential(OrderedDict(
            f5=nn.Linear(16 * 5 * 5, 120),
            relu5=nn.ReLU(inplace=True),
            f6=nn.Linear(120, 84),
            relu6=nn.ReLU(inplace=True),
            output=nn.Linear(84, num_classes),
        ))

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


@register(
    "lenet5",
    family="LeNet",
    paper=LECUN_1998,
    input_shape=(1, 32, 32),
    num_classes=10,
    params=61_706,
    init="PyTorch defaults (Kaiming-uniform with a=sqrt(5), bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)))",
    notes="Modern simplification: ReLU instead of scaled tanh, max pooling instead of trainable "
    "subsampling, full C3 connections, plain linear output instead of RBF units.",
)
def lenet5(num_classes: int = 10, in_channels: int = 1) -> nn.Module:
    return LeNet5(num_classes, in_channels)


# ---------------------------------------------------------------------------------------------
# The 1998 network

class ScaledTanh(nn.Module):
    """The paper's squashing function f(a) = A tanh(S a) with A = 1.7159, S = 2/3 (Appendix A),
    chosen so that f(1) = 1 and f(-1) = -1."""

    amplitude = 1.7159
    slope = 2.0 / 3.0

    def forward(self, x):
        return self.amplitude * torch.tanh(self.slope * x)

    def extra_repr(self) -> str:
        return "f(a) = 1.7159 tanh(2a/3)"


class Subsampling(nn.Module):
    """S2/S4: each unit adds its 2x2 inputs, multiplies by one trainable coefficient per map and
    adds one trainable bias per map (2 parameters per map)."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(channels))
        self.bias = nn.Parameter(torch.empty(channels))

    def forward(self, x):
        # 4 x the 2x2 mean is the 2x2 sum bit for bit; divisor_override=1 would say it directly, but
        # torch.onnx drops divisor_override (the exported model then divides by 4)
        window_sum = 4 * F.avg_pool2d(x, 2)
        return window_sum * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)

    def extra_repr(self) -> str:
        return f"{self.weight.numel()} maps, 2x2 sum * coefficient + bias"


# Table I of the paper: which S2 feature maps (rows 0-5) each C3 feature map (0-15) reads.
C3_CONNECTIONS = (
    (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (4, 5, 0), (5, 0, 1),
    (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (3, 4, 5, 0), (4, 5, 0, 1), (5, 0, 1, 2),
    (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)


class PartialConv2d(nn.Module):
    """C3: a convolution where output map j sees only the input maps in `connections[j]`.

    Output maps with the same fan-in form one grouped convolution over the gathered input maps
    (6 maps x 3 inputs, 9 maps x 4, 1 map x 6 for Table I), so only connected weights exist:
    the parameter count and the analyzer's MACs are the paper's (1,516 parameters,
    151,600 connections), not those of a masked dense convolution.
    """

    def __init__(self, connections, kernel_size: int = 5):
        super().__init__()
        fan_ins = sorted({len(c) for c in connections})
        self.by_fan_in = nn.ModuleDict()
        order = []
        for fan_in in fan_ins:
            maps = [j for j, c in enumerate(connections) if len(c) == fan_in]
            inputs = [i for j in maps for i in connections[j]]
            self.register_buffer(f"inputs_{fan_in}", torch.tensor(inputs), persistent=False)
            self.by_fan_in[str(fan_in)] = nn.Conv2d(len(inputs), len(maps), kernel_size, groups=len(maps))
            order += maps
        # position of each output map in the concatenation of the groups
        self.register_buffer("order", torch.argsort(torch.tensor(order)), persistent=False)

    def forward(self, x):
        groups = [conv(x[:, getattr(self, f"inputs_{key}")]) for key, conv in self.by_fan_in.items()]
        return torch.cat(groups, dim=1)[:, self.order]


def rbf_codes(num_classes: int) -> torch.Tensor:
    """Fixed +-1 targets of the RBF output units, one 84-vector (a 7x12 bitmap) per class.

    For the 10 digits these are the stylised characters below, drawn for cnnlab after figure 3 of
    the paper (its exact bitmaps are not published as data). For any other class count the codes
    are pseudo-random +-1 vectors from a fixed seed, so they are the same on every machine.
    """
    if num_classes == 10:
        pixels = ["".join(bitmap.split()) for bitmap in _DIGIT_BITMAPS]
        return torch.tensor([[1.0 if ch == "#" else -1.0 for ch in digit] for digit in pixels])
    generator = torch.Generator().manual_seed(1998)
    return torch.randint(0, 2, (num_classes, 84), generator=generator).float() * 2 - 1


_DIGIT_BITMAPS = [  # 12 rows of 7 pixels each: "#" = +1, "." = -1
    """ ....... ..###.. .#...#. #.....# #.....# #.....# #.....# #.....# #.....# .#...#. ..###.. ....... """,
    """ ....... ...#... ..##... .#.#... ...#... ...#... ...#... ...#... ...#... ...#... .#####. ....... """,
    """ ....... .####.. #....#. ......# .....#. ....#.. ...#... ..#.... .#..... #...... ####### ....... """,
    """ ....... .#####. #.....# ......# .....#. ..###.. .....#. ......# ......# #.....# .#####. ....... """,
    """ ....... ....##. ...#.#. ..#..#. .#...#. #....#. ####### .....#. .....#. .....#. .....#. ....... """,
    """ ....... ####### #...... #...... ######. ......# ......# ......# ......# #.....# .#####. ....... """,
    """ ....... ..####. .#..... #...... #...... ######. #.....# #.....# #.....# #.....# .#####. ....... """,
    """ ....... ####### ......# .....#. ....#.. ...#... ..#.... ..#.... ..#.... ..#.... ..#.... ....... """,
    """ ....... .#####. #.....# #.....# #.....# .#####. #.....# #.....# #.....# #.....# .#####. ....... """,
    """ ....... .#####. #.....# #.....# #.....# #.....# .###### ......# ......# .....#. .####.. ....... """,
]


class EuclideanRBF(nn.Module):
    """The output layer: y_i = sum_j (x_j - w_ij)^2, with fixed +-1 parameter vectors w_i.

    It returns -y (a negated squared distance), so the closest code has the largest score:
    argmax picks the paper's class, and cross-entropy on -y is the paper's MAP criterion (eq. 9)
    without its constant "rubbish class" term e^-j.
    """

    def __init__(self, in_features: int, num_classes: int):
        super().__init__()
        codes = rbf_codes(num_classes)
        if codes.shape[1] != in_features:
            raise ValueError(f"RBF codes have {codes.shape[1]} entries, F6 has {in_features} units")
        self.register_buffer("codes", codes)

    def forward(self, x):
        return -((x.unsqueeze(1) - self.codes) ** 2).sum(dim=2)

    def extra_repr(self) -> str:
        return f"{self.codes.shape[1]} -> {self.codes.shape[0]}, fixed +-1 codes (not trained)"


class LeNet5_1998(nn.Module):
    """LeNet-5 as in figure 2 of LeCun et al. 1998: 60,000 trainable parameters."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1):
        super().__init__()
        self.features = nn.Sequential(OrderedDict(
            c1=nn.Conv2d(in_channels, 6, kernel_size=5),    # 32x32 -> 6@28x28
            squash1=ScaledTanh(),
            s2=Subsampling(6),                              # -> 6@14x14
            squash2=ScaledTanh(),
            c3=PartialConv2d(C3_CONNECTIONS),               # -> 16@10x10, Table I
            squash3=ScaledTanh(),
            s4=Subsampling(16),                             # -> 16@5x5
            squash4=ScaledTanh(),
            c5=nn.Conv2d(16, 120, kernel_size=5),           # -> 120@1x1
            squash5=ScaledTanh(),
        ))
        self.classifier = nn.Sequential(OrderedDict(
            f6=nn.Linear(120, 84),
            squash6=ScaledTanh(),
            output=EuclideanRBF(84, num_classes),
        ))
        self.reset_parameters()

    def reset_parameters(self):
        """Appendix C: every weight drawn from U(-2.4/F, 2.4/F), F the fan-in of its unit. We
        treat biases as weights from a constant input (the paper's formalism) and init them alike."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                fan_in = module.weight[0].numel()
            elif isinstance(module, nn.Linear):
                fan_in = module.in_features
            elif isinstance(module, Subsampling):
                fan_in = 4
            else:
                continue
            for parameter in (module.weight, module.bias):
                nn.init.uniform_(parameter, -2.4 / fan_in, 2.4 / fan_in)

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


@register(
    "lenet5_1998",
    family="LeNet",
    paper=LECUN_1998,
    input_shape=(1, 32, 32),
    num_classes=10,
    params=60_000,
    published_error="test error 0.95% on MNIST (0.8% with distortions)",
    init="U(-2.4/F, 2.4/F) for every weight and bias, F = the unit's fan-in (paper, Appendix C); "
    "RBF codes fixed, not trained",
    notes="Scaled tanh 1.7159 tanh(2a/3) after every layer up to F6; S2/S4 = 2x2 sum x trainable "
    "coefficient + bias per map; C3 connected by Table I; C5 a 5x5 convolution; output = Euclidean "
    "RBF units against fixed +-1 7x12 codes (hand-drawn digits, see docs/models.md), returned "
    "negated so argmax/cross-entropy work.",
)
def lenet5_1998(num_classes: int = 10, in_channels: int = 1) -> nn.Module:
    return LeNet5_1998(num_classes, in_channels)
