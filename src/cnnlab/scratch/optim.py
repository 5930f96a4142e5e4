"""Stochastic gradient descent with momentum and weight decay, torch.optim.SGD's convention:

    g ← ∇L + λ·θ          (weight decay folded into the gradient)
    v ← μ·v + g           (v = g on the first step)
    θ ← θ − η·v

so one step from the same weights and gradients gives the same weights as torch.
"""

from __future__ import annotations

import numpy as np

from cnnlab.scratch.layers import Parameter


class SGD:
    def __init__(self, parameters: dict[str, Parameter], lr: float, momentum: float = 0.0, weight_decay: float = 0.0):
        self.parameters, self.lr, self.momentum, self.weight_decay = parameters, lr, momentum, weight_decay
        self.velocity: dict[str, np.ndarray] = {}

    def step(self) -> None:
        for name, p in self.parameters.items():
            g = p.grad + self.weight_decay * p.data if self.weight_decay else p.grad
            if self.momentum:
                v = self.velocity.get(name)
                g = self.velocity[name] = g.copy() if v is None else self.momentum * v + g
            p.data = p.data - self.lr * g
