"""ZFNet (Zeiler & Fergus 2013): the network their deconvnet visualisations led them to, AlexNet
with the changes the pictures asked for (the architecture figure of "Visualizing and Understanding
Convolutional Networks", section 4.1):

- conv1: 7×7 filters at stride 2 instead of 11×11 at stride 4 (the visualised layer-1 filters mixed
  very high and low frequencies, and the large stride aliased layer 2);
- conv2 at stride 2 (5×5, 256 filters), so the maps are 110 → 55 → 26 → 13 as in the figure;
- convolutions 3-5 densely connected (trained on one GPU: no two-tower split) with 384, 384, 256
  filters; contrast normalisation across maps after the first two layers (AlexNet's LRN here);
- the same fully connected head as AlexNet.

3×3/2 max-pools round up (55 from 110, 13 from 26) as the figure's sizes require; conv1 pads 1 pixel
(224 → 110). `cnnlab viz deconv` draws this paper's projections.
"""

from collections import OrderedDict

import torch
from torch import nn

from cnnlab.models.alexnet import paper_classifier
from cnnlab.models.layers import paper_lrn
from cnnlab.models.registry import Paper, register

ZEILER_2013 = Paper("M. D. Zeiler, R. Fergus", 2013, "Visualizing and Understanding Convolutional Networks")


def pool() -> nn.MaxPool2d:
    return nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True)


class ZFNet(nn.Module):
    def __init__(self, num_classes: int = 1000, in_channels: int = 3):
        super().__init__()
        self.features = nn.Sequential(OrderedDict(
            conv1=nn.Conv2d(in_channels, 96, kernel_size=7, stride=2, padding=1),   # 224 -> 110
            relu1=nn.ReLU(inplace=True),
            pool1=pool(),                                                            # -> 55
            norm1=paper_lrn(),
            conv2=nn.Conv2d(96, 256, kernel_size=5, stride=2),                       # -> 26
            relu2=nn.ReLU(inplace=True),
            pool2=pool(),                                                            # -> 13
            norm2=paper_lrn(),
            conv3=nn.Conv2d(256, 384, kernel_size=3, padding=1),
            relu3=nn.ReLU(inplace=True),
            conv4=nn.Conv2d(384, 384, kernel_size=3, padding=1),
            relu4=nn.ReLU(inplace=True),
            conv5=nn.Conv2d(384, 256, kernel_size=3, padding=1),
            relu5=nn.ReLU(inplace=True),
            pool5=pool(),                                                            # -> 6
        ))
        self.classifier = paper_classifier(num_classes)
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.normal_(module.weight, mean=0.0, std=0.01)
                nn.init.zeros_(module.bias)

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


@register(
    "zfnet", family="ZFNet", paper=ZEILER_2013, input_shape=(3, 224, 224), num_classes=1000,
    params=62_357_608,
    published_error="top-1 38.3%, top-5 16.4% (ILSVRC-2012 val; 16.5% top-5 test), one convnet as in the "
    "architecture figure; Table 2 (5 convnets: 15.3% top-5 test)",
    init="weights N(0, 0.01), biases 0 (the paper: 'all weights are initialized to 1e-2 and biases are set to 0'); "
    "the paper also renormalises conv filters whose RMS exceeds 0.1, a training step not built into the model",
    notes="AlexNet with conv1 7×7/2 (padding 1) and conv2 at stride 2, dense conv3-5 (no GPU towers), 3×3/2 "
    "max-pools rounding up; contrast normalisation is AlexNet's LRN (paper_lrn). Trained on 224×224 crops "
    "of the 256×256 centre",
)
def zfnet(num_classes: int = 1000, in_channels: int = 3) -> nn.Module:
    return ZFNet(num_classes, in_channels)
