"""What the explorer takes from the rest of cnnlab, one small function each: the graph layout
(`layout`), Grad-CAM from `cnnlab.viz.cam` (`cam_layer`, `cam_maps`) and the model-randomisation
check of Adebayo et al. 2018 (`sanity_model`, `cam_sanity`; the correlation and its threshold are
`cnnlab.viz.sanity`'s).

The check here is one step with one seed, not the report's cascade averaged over three: the page
computes it for every embedded image, so it re-initialises at once every weighted layer from the
output down to the CAM layer's, and flags a correlation at or above the report's threshold.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from cnnlab.viz.sanity import FLAG_AT, spearman


def layout(nodes: list[tuple[int, list[int]]]) -> dict[int, tuple[int, int]]:
    """{node: (column, row)} for nodes given in execution order with their source nodes (−1 is
    the input, in column 0). A node's column is one more than its furthest source (longest-path
    layering), so parallel branches share columns; within a column a node takes the row of its
    first source if free, else the next free row, so a main path stays on one line and branches
    and projection shortcuts stack beneath it."""
    place: dict[int, tuple[int, int]] = {-1: (0, 0)}
    taken: dict[int, set[int]] = {0: {0}}
    for node, sources in nodes:
        known = [place[s] for s in sources if s in place] or [(0, 0)]
        column = max(c for c, _ in known) + 1
        row = min(r for _, r in known)
        rows = taken.setdefault(column, set())
        while row in rows:
            row += 1
        rows.add(row)
        place[node] = (column, row)
    del place[-1]
    return place


def cam_layer(model: nn.Module, input_shape) -> str:
    from cnnlab.viz.cam import default_cam_layer

    return default_cam_layer(model, input_shape)


def cam_maps(model: nn.Module, x: torch.Tensor, layer: str, classes: list[int]) -> np.ndarray:
    """Grad-CAM maps (len(classes), H, W) in [0, 1] over the input, one per class."""
    from cnnlab.viz.cam import class_maps

    return class_maps(model, x, layer, classes, "gradcam")


@dataclass
class Sanity:
    randomised: list[str]  # the layers whose weights were drawn afresh
    correlation: float | None  # Spearman ρ between the trained and the randomised map; None if undefined
    flagged: bool  # the map barely changed: it does not show what the trained weights learned


def sanity_model(model: nn.Module, layer: str, leaves: list[str], seed: int = 0) -> tuple[nn.Module, list[str]]:
    """A copy of `model` whose top layers are re-initialised: every weighted layer from the output
    down to, and including, the last weighted layer of the CAM layer (the cascading randomisation
    of Adebayo et al. 2018, taken to the layer whose maps Grad-CAM weighs, so both the weights and
    the maps it combines change). `leaves`: leaf module names in the order the forward pass ran."""
    modules = dict(model.named_modules())
    end = max((i for i, n in enumerate(leaves) if n == layer or n.startswith(layer + ".")), default=-1)
    weighted = [(i, n) for i, n in enumerate(leaves) if any(True for _ in modules[n].parameters(recurse=False))]
    last = max((k for k, (i, _) in enumerate(weighted) if i <= end), default=0)
    top = list(dict.fromkeys(n for _, n in weighted[last:]))
    randomised = copy.deepcopy(model)
    copies = dict(randomised.named_modules())
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        for name in reversed(top):
            module = copies[name]
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
            else:
                for parameter in module.parameters(recurse=False):
                    torch.nn.init.normal_(parameter, std=0.1)
    finally:
        torch.random.set_rng_state(generator_state)
    return randomised.eval(), top


def cam_sanity(randomised: nn.Module, names: list[str], x: torch.Tensor, layer: str, target: int,
               trained: np.ndarray) -> Sanity:
    """Grad-CAM of `target` with the randomised model, rank-correlated with the trained map."""
    shuffled = cam_maps(randomised, x, layer, [target])[0]
    if not np.isfinite(shuffled).all() or np.ptp(shuffled) == 0:
        return Sanity(names, None, False)
    rho = spearman(trained, shuffled)
    if rho is None or not np.isfinite(rho):
        return Sanity(names, None, False)
    return Sanity(names, rho, rho >= FLAG_AT)
