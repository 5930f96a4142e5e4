"""The model-randomisation sanity check for saliency maps (Adebayo et al. 2018, "Sanity Checks
for Saliency Maps"): is a map about what the model learned, or about the input alone?

The weighted layers (convolutions and fully connected layers, in the order the forward pass
runs them) are re-initialised from the top down, cumulatively ("cascading"), as in the paper;
after some of the steps the same map is computed again. Its Spearman rank correlation with the
trained model's map says how much of the map survived: a map that explains the model must
change once the weights it explains are gone. A method whose maps keep a high correlation is
flagged: the paper found guided backpropagation and guided Grad-CAM nearly unchanged, like an
edge detector; Grad-CAM changes at once.

`randomisation_check(model, saliency, layers)` works for any saliency method given as a
function model -> H x W map; `cam.cam_check` and `deconv.deconv_check` are the two cnnlab uses.
Each step's correlation is the mean over SEEDS independent randomisations, so that one unlucky
draw neither hides nor raises a flag.

FLAG_AT was chosen by measurement (`benchmarks/viz.py --sanity`, BENCHMARKS.md): Grad-CAM of the
predicted class on the README's LeNet-5 trained on digits, 58 test images, 3 seeds: the mean
correlation over the cascade is 0.06 on average, 0.24 at the 95th percentile and at most 0.31; a
map of the input's edges, which ignores the weights, scores 1.0. 0.5 lies well between the two.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

FLAG_AT = 0.5  # mean rank correlation over the cascade at or above which a map is flagged
SEEDS = 3  # randomisations averaged per step
MAX_STEPS = 5  # maps computed along the cascade (its first and last step included)
WEIGHTED = (nn.Conv2d, nn.Linear)


@dataclass
class Step:
    """The map after re-initialising `layers` (top first), from the first seed, and its
    correlation with the trained map (mean over seeds; None where undefined: a constant map)."""

    layers: tuple[str, ...]
    map: np.ndarray
    rho: float | None


@dataclass
class SanityCheck:
    method: str
    trained: np.ndarray  # the map of the trained model
    steps: list[Step]
    cascade: tuple[str, ...]  # every weighted layer the check randomises, top first
    flag_at: float = FLAG_AT

    @property
    def score(self) -> float | None:
        """Mean correlation over the steps where it is defined; None for an empty trained map."""
        rhos = [step.rho for step in self.steps if step.rho is not None]
        return float(np.mean(rhos)) if rhos else None

    @property
    def flagged(self) -> bool:
        return self.score is not None and self.score >= self.flag_at

    @property
    def verdict(self) -> str:
        layers = f"{len(self.cascade)} weighted layers randomised top-down"
        if self.score is None:
            return f"sanity check ({layers}): not applicable, the trained map is empty"
        if self.flagged:
            return (f"FLAGGED by the sanity check ({layers}): mean Spearman ρ = {self.score:.2f} ≥ {self.flag_at}; "
                    "the map barely changes without the learned weights, so it shows the input more than the model")
        return (f"sanity check passed ({layers}): mean Spearman ρ = {self.score:.2f} < {self.flag_at}; "
                "the map changes when the learned weights are destroyed")


def tiles(check: SanityCheck, render: Callable[[np.ndarray], np.ndarray], trained_label: str):
    """A figure row for `check`: (tiles, labels, label colours): the trained map, then each
    step's map (as `render` draws a map) with its correlation; red when flagged."""
    from cnnlab.viz.figure import RED

    total = len(check.cascade)
    labels = [trained_label]
    for step in check.steps:
        which = f"all {total}" if len(step.layers) == total else f"top {len(step.layers)} of {total}"
        rho = "ρ undefined" if step.rho is None else f"ρ = {step.rho:.2f}"
        labels.append(f"{which} random\n{rho}" + ("" if step.map.any() else ", empty"))
    colours = ["black"] + [RED if check.flagged else "black"] * len(check.steps)
    return [render(check.trained)] + [render(step.map) for step in check.steps], labels, colours


def weighted_layers(model: nn.Module, input_shape) -> list[str]:
    """Names of the convolutions and linear layers in the order a forward pass calls them (which
    may differ from the order they were registered in); layers that do not run are left out."""
    order: list[str] = []
    hooks = [m.register_forward_hook(lambda *_, n=n: order.append(n) if n not in order else None)
             for n, m in model.named_modules() if isinstance(m, WEIGHTED)]
    try:
        with torch.no_grad():
            model(torch.zeros(1, *input_shape, device=_device(model)))
    finally:
        for hook in hooks:
            hook.remove()
    return order


def randomisation_check(model: nn.Module, saliency: Callable[[nn.Module], np.ndarray], cascade: list[str], *,
                        method: str = "", seeds: int = SEEDS, max_steps: int = MAX_STEPS) -> SanityCheck:
    """Run `saliency` on `model` and on copies whose layers `cascade` (top first) are
    re-initialised cumulatively; `model` itself is left untouched."""
    trained = np.asarray(saliency(model), dtype=np.float64)
    marks = sorted({int(round(k)) for k in np.linspace(1, len(cascade), min(max_steps, len(cascade)))})
    maps: dict[int, list[np.ndarray]] = {k: [] for k in marks}
    for seed in range(seeds):
        randomised = copy.deepcopy(model)
        modules = dict(randomised.named_modules())
        for k, name in enumerate(cascade, 1):
            with torch.random.fork_rng(devices=[]):  # reproducible, and the caller's random state is kept
                torch.manual_seed(1000 * seed + k)
                modules[name].reset_parameters()  # PyTorch's default initialisation of the layer
            if k in maps:
                maps[k].append(np.asarray(saliency(randomised), dtype=np.float64))
    steps = [Step(tuple(cascade[:k]), maps[k][0], _mean_rho(trained, maps[k])) for k in marks]
    return SanityCheck(method, trained, steps, tuple(cascade))


def spearman(trained: np.ndarray, other: np.ndarray) -> float | None:
    """Spearman's rank correlation of two maps (ties share their mean rank). Undefined (None)
    for a constant trained map; 0 when only `other` is constant (an empty map keeps nothing of
    the trained map's order). Written here rather than taken from scipy.stats, whose import
    (0.65 s) was a quarter of the report's time; tests check it against scipy's."""
    trained, other = np.ravel(trained), np.ravel(other)
    if np.ptp(trained) == 0:
        return None
    if np.ptp(other) == 0:
        return 0.0
    return float(np.corrcoef(_mean_ranks(trained), _mean_ranks(other))[0, 1])


def _mean_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1…n of `values`, tied values sharing the mean of their ranks."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])  # where each run of ties begins
    ends = np.r_[starts[1:], len(values)]
    ranks = np.empty(len(values))
    ranks[order] = np.repeat((starts + ends + 1) / 2, ends - starts)
    return ranks


def _mean_rho(trained: np.ndarray, maps: list[np.ndarray]) -> float | None:
    rhos = [spearman(trained, m) for m in maps]
    return None if None in rhos else float(np.mean(rhos))


def _device(model: nn.Module) -> torch.device:
    return next((p.device for p in model.parameters()), torch.device("cpu"))
