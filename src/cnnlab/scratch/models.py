"""Networks built from scratch layers, with the zoo's layer names so weights move both ways."""

from __future__ import annotations

import numpy as np

from cnnlab.scratch.layers import Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential


def lenet5(num_classes: int = 10, in_channels: int = 1, seed: int | None = None, conv_method: str = "im2col") -> Sequential:
    """The zoo's `lenet5` (cnnlab/models/lenet.py): 1×32×32 → C1 6@5×5 → ReLU → max 2 → C3 16@5×5
    → ReLU → max 2 → F5 400→120 → ReLU → F6 84 → ReLU → output. 61,706 parameters at the defaults."""
    rng = np.random.default_rng(seed)
    return Sequential(
        ("features", Sequential(
            ("c1", Conv2d(in_channels, 6, 5, method=conv_method, rng=rng)),
            ("relu1", ReLU()),
            ("s2", MaxPool2d(2)),
            ("c3", Conv2d(6, 16, 5, method=conv_method, rng=rng)),
            ("relu3", ReLU()),
            ("s4", MaxPool2d(2)),
        )),
        ("flatten", Flatten()),
        ("classifier", Sequential(
            ("f5", Linear(16 * 5 * 5, 120, rng=rng)),
            ("relu5", ReLU()),
            ("f6", Linear(120, 84, rng=rng)),
            ("relu6", ReLU()),
            ("output", Linear(84, num_classes, rng=rng)),
        )),
    )


MODELS = {"lenet5": lenet5}
