"""cnnlab.scratch: a convolutional network engine in NumPy alone, small enough to read in an
afternoon and checked against PyTorch to the last digit (see docs/scratch.md).

    from cnnlab import scratch
    model = scratch.lenet5(seed=0)
    optimizer = scratch.SGD(model.parameters(), lr=0.05, momentum=0.9)
    logits = model(x)                                    # x: float32 N×1×32×32
    loss, dlogits = scratch.softmax_cross_entropy(logits, y)
    model.backward(dlogits)
    optimizer.step()

Importing it never imports torch.
"""

from cnnlab.scratch.io import load, load_run, run_weights, save
from cnnlab.scratch.layers import (
    AvgPool2d,
    Conv2d,
    Dropout,
    Flatten,
    Layer,
    Linear,
    LocalResponseNorm,
    MaxPool2d,
    Parameter,
    ReLU,
    Sequential,
    Sigmoid,
    Softsign,
    Tanh,
)
from cnnlab.scratch.losses import euclidean, pixelwise_softmax_cross_entropy, sigmoid_cross_entropy, softmax_cross_entropy
from cnnlab.scratch.models import lenet5
from cnnlab.scratch.optim import SGD

__all__ = [
    "AvgPool2d", "Conv2d", "Dropout", "Flatten", "Layer", "Linear", "LocalResponseNorm", "MaxPool2d", "Parameter",
    "ReLU", "SGD", "Sequential", "Sigmoid", "Softsign", "Tanh", "euclidean", "lenet5", "load", "load_run",
    "pixelwise_softmax_cross_entropy", "run_weights", "save", "sigmoid_cross_entropy", "softmax_cross_entropy",
]
