"""Optimisers with torch.optim's conventions, so one step from the same weights and gradients
gives the same weights as torch. Weight decay λ is L2 folded into the gradient, g ← ∇L + λ·θ,
in both (torch's Adam, not AdamW).

SGD with momentum μ:   v ← μ·v + g (v = g on the first step);   θ ← θ − η·v
Adam (Kingma & Ba 2015), step t:
    m ← β₁·m + (1 − β₁)·g          v ← β₂·v + (1 − β₂)·g²
    θ ← θ − η · m̂ / (√v̂ + ε)       with m̂ = m/(1 − β₁ᵗ), v̂ = v/(1 − β₂ᵗ) (the early steps' bias removed)
"""

from __future__ import annotations

import numpy as np

from cnnlab.scratch.layers import Parameter


class Optimizer:
    """The loop both share: fold in weight decay, ask the rule for a step, take it."""

    def __init__(self, parameters: dict[str, Parameter], lr: float, weight_decay: float = 0.0):
        self.parameters, self.lr, self.weight_decay = parameters, lr, weight_decay

    def step(self) -> None:
        for name, p in self.parameters.items():
            g = p.grad + self.weight_decay * p.data if self.weight_decay else p.grad
            p.data = p.data - self.lr * self.direction(name, g)

    def direction(self, name: str, g: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def state(self) -> dict:
        """What a checkpoint keeps to continue exactly: named arrays, and counters."""
        raise NotImplementedError


class SGD(Optimizer):
    def __init__(self, parameters: dict[str, Parameter], lr: float, momentum: float = 0.0, weight_decay: float = 0.0):
        super().__init__(parameters, lr, weight_decay)
        self.momentum = momentum
        self.velocity: dict[str, np.ndarray] = {}

    def direction(self, name, g):
        if not self.momentum:
            return g
        v = self.velocity.get(name)
        self.velocity[name] = g.copy() if v is None else self.momentum * v + g
        return self.velocity[name]

    def state(self) -> dict:
        return {"momentum_buffers": self.velocity}


class Adam(Optimizer):
    def __init__(self, parameters: dict[str, Parameter], lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        super().__init__(parameters, lr, weight_decay)
        self.betas, self.eps, self.steps = betas, eps, 0
        self.m: dict[str, np.ndarray] = {name: np.zeros_like(p.data) for name, p in parameters.items()}
        self.v: dict[str, np.ndarray] = {name: np.zeros_like(p.data) for name, p in parameters.items()}

    def step(self) -> None:
        self.steps += 1
        super().step()

    def direction(self, name, g):
        (beta1, beta2), t = self.betas, self.steps
        self.m[name] = beta1 * self.m[name] + (1 - beta1) * g
        self.v[name] = beta2 * self.v[name] + (1 - beta2) * g * g
        m_hat, v_hat = self.m[name] / (1 - beta1**t), self.v[name] / (1 - beta2**t)
        return m_hat / (np.sqrt(v_hat) + self.eps)

    def state(self) -> dict:
        return {"exp_avg": self.m, "exp_avg_sq": self.v, "step": self.steps}
