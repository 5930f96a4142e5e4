"""cnnlab.scratch: a convolutional network engine in NumPy alone, small enough to read in an
afternoon and checked against PyTorch to the last digit (see docs/scratch.md).

    from cnnlab import scratch
    model = scratch.resnet20(seed=0)                     # or lenet5, plain20, nin_cifar, ...
    optimizer = scratch.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    logits = model(x)                                    # x: float32 N×3×32×32
    loss, dlogits = scratch.softmax_cross_entropy(logits, y)
    model.backward(dlogits)
    optimizer.step()

Importing it never imports torch.
"""

from cnnlab.scratch.graph import Container, Graph, Sequential
from cnnlab.scratch.io import load, load_run, run_weights, save
from cnnlab.scratch.layers import (
    Add,
    AvgPool2d,
    Buffer,
    Conv2d,
    Dropout,
    Flatten,
    GlobalAvgPool2d,
    Layer,
    Linear,
    MaxPool2d,
    Parameter,
    ReLU,
    Sigmoid,
    Softsign,
    Tanh,
    ZeroPadShortcut,
)
from cnnlab.scratch.losses import euclidean, pixelwise_softmax_cross_entropy, sigmoid_cross_entropy, softmax_cross_entropy
from cnnlab.scratch.models import MODELS, build, lenet5, nin_cifar
from cnnlab.scratch.norm import BatchNorm2d, LocalResponseNorm
from cnnlab.scratch.optim import SGD, Adam

resnet20, plain20 = MODELS["resnet20"], MODELS["plain20"]

__all__ = [
    "MODELS", "Adam", "Add", "AvgPool2d", "BatchNorm2d", "Buffer", "Container", "Conv2d", "Dropout", "Flatten",
    "GlobalAvgPool2d", "Graph", "Layer", "Linear", "LocalResponseNorm", "MaxPool2d", "Parameter", "ReLU", "SGD",
    "Sequential", "Sigmoid", "Softsign", "Tanh", "ZeroPadShortcut", "build", "euclidean", "lenet5", "load", "load_run",
    "nin_cifar", "pixelwise_softmax_cross_entropy", "plain20", "resnet20", "run_weights", "save",
    "sigmoid_cross_entropy", "softmax_cross_entropy",
]
