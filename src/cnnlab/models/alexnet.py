"""AlexNet: the 2012 network as published (two GPU towers as grouped convolutions), the same
without the split, and torchvision's single-tower variant (state-dict compatible with it)."""

from collections import OrderedDict

import torch
from torch import nn

from cnnlab.models.layers import paper_lrn
from cnnlab.models.registry import Paper, register

KRIZHEVSKY_2012 = Paper(
    "A. Krizhevsky, I. Sutskever, G. E. Hinton",
    2012,
    "ImageNet Classification with Deep Convolutional Neural Networks",
)
PAPER_INIT = (
    "weights N(0, 0.01); biases 1 in conv2, conv4, conv5, fc6, fc7 (the fully-connected hidden "
    "layers), 0 in conv1, conv3, fc8 (paper, section 5)"
)


class AlexNet(nn.Module):
    """Figure 2 of the paper. `towers=2` splits conv2, conv4 and conv5 into two groups, one per
    GPU; conv3 and the fully-connected layers read both towers, as in the paper."""

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, towers: int = 2):
        super().__init__()
        self.features = nn.Sequential(OrderedDict(
            conv1=nn.Conv2d(in_channels, 96, kernel_size=11, stride=4),         # 227 -> 55
            relu1=nn.ReLU(inplace=True),
            norm1=paper_lrn(size=5, alpha=1e-4, beta=0.75, k=2),
            pool1=nn.MaxPool2d(kernel_size=3, stride=2),                         # -> 27
            conv2=nn.Conv2d(96, 256, kernel_size=5, padding=2, groups=towers),
            relu2=nn.ReLU(inplace=True),
            norm2=paper_lrn(size=5, alpha=1e-4, beta=0.75, k=2),
            pool2=nn.MaxPool2d(kernel_size=3, stride=2),                         # -> 13
            conv3=nn.Conv2d(256, 384, kernel_size=3, padding=1),
            relu3=nn.ReLU(inplace=True),
            conv4=nn.Conv2d(384, 384, kernel_size=3, padding=1, groups=towers),
            relu4=nn.ReLU(inplace=True),
            conv5=nn.Conv2d(384, 256, kernel_size=3, padding=1, groups=towers),
            relu5=nn.ReLU(inplace=True),
            pool5=nn.MaxPool2d(kernel_size=3, stride=2),                         # -> 6
        ))
        self.classifier = paper_classifier(num_classes)
        self.reset_parameters()

    def reset_parameters(self):
        layers = {**dict(self.features.named_children()), **dict(self.classifier.named_children())}
        for name, layer in layers.items():
            if isinstance(layer, (nn.Conv2d, nn.Linear)):
                nn.init.normal_(layer.weight, mean=0.0, std=0.01)
                nn.init.constant_(layer.bias, 1.0 if name in {"conv2", "conv4", "conv5", "fc6", "fc7"} else 0.0)

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def paper_classifier(num_classes: int) -> nn.Sequential:
    """fc6, fc7 (4,096 ReLU units, dropout 0.5 after each) and fc8 on the 256 maps of 6×6 of pool5
    (AlexNet's, which ZFNet keeps)."""
    return nn.Sequential(OrderedDict(
        fc6=nn.Linear(256 * 6 * 6, 4096),
        relu6=nn.ReLU(inplace=True),
        drop6=nn.Dropout(0.5),
        fc7=nn.Linear(4096, 4096),
        relu7=nn.ReLU(inplace=True),
        drop7=nn.Dropout(0.5),
        fc8=nn.Linear(4096, num_classes),
    ))


_PAPER_CARD = dict(
    family="AlexNet",
    paper=KRIZHEVSKY_2012,
    input_shape=(3, 227, 227),
    num_classes=1000,
    init=PAPER_INIT,
)


@register(
    "alexnet",
    params=60_965_224,
    published_error="top-1 40.7%, top-5 18.2% (one CNN, ILSVRC-2012 val); 37.5% / 17.0% on ILSVRC-2010 test",
    notes="Input 227x227 (the paper says 224, but (224 - 11)/4 + 1 is not an integer; 227 gives its "
    "55x55). LRN with the paper's alpha (torch alpha = 5e-4, see layers.paper_lrn). The two GPU towers "
    "are groups=2 on conv2, conv4, conv5.",
    **_PAPER_CARD,
)
def alexnet(num_classes: int = 1000, in_channels: int = 3) -> nn.Module:
    return AlexNet(num_classes, in_channels, towers=2)


@register(
    "alexnet_onetower",
    params=62_378_344,
    notes="The published AlexNet with the two-GPU split removed: conv2, conv4, conv5 see every "
    "input map. Not a network the paper trained.",
    **_PAPER_CARD,
)
def alexnet_onetower(num_classes: int = 1000, in_channels: int = 3) -> nn.Module:
    return AlexNet(num_classes, in_channels, towers=1)


class AlexNetTorchvision(nn.Module):
    """torchvision's AlexNet (after Krizhevsky's 2014 "one weird trick" single-GPU net): 64, 192,
    384, 256, 256 kernels, no LRN, adaptive average pool to 6x6, dropout before fc6 and fc7.
    The unnamed layer indices are torchvision's, so state dicts load both ways."""

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 64, kernel_size=11, stride=4, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


@register(
    "alexnet_torchvision",
    family="AlexNet",
    paper=Paper("A. Krizhevsky", 2014, "One weird trick for parallelizing convolutional neural networks"),
    input_shape=(3, 224, 224),
    num_classes=1000,
    params=61_100_840,
    published_error="top-1 43.48%, top-5 20.93% (torchvision IMAGENET1K_V1 weights, ImageNet val)",
    init="PyTorch defaults (as torchvision: Kaiming-uniform with a=sqrt(5))",
    notes="torchvision.models.alexnet: state-dict compatible both ways (same layer indices).",
)
def alexnet_torchvision(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> nn.Module:
    return AlexNetTorchvision(num_classes, in_channels, dropout)
