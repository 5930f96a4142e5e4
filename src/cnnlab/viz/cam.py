"""Class activation maps with the `grad-cam` library (pytorch-grad-cam, MIT, well kept): it
implements Grad-CAM, Grad-CAM++ and Score-CAM on any nn.Module given a target layer, offline.
cnnlab adds what the library leaves to its caller: a default target layer for every zoo family,
the top-5 predictions, and the figure.
"""

from __future__ import annotations

import contextlib
import io
import textwrap

import numpy as np
import torch
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.viz.figure import FONT, display_image, heat_overlay, panels, save, show_image
from cnnlab.viz.subject import Subject, resolve_layer_name

METHODS = ("gradcam", "gradcam++", "scorecam")
TITLES = {"gradcam": "Grad-CAM", "gradcam++": "Grad-CAM++", "scorecam": "Score-CAM"}
RESAMPLING = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)  # fixed-size resampling, not features: never a CAM layer


def default_cam_layer(model: nn.Module, input_shape) -> str:
    """The last module whose output is still a spatial map (more than 1x1) in a forward pass.

    Forward hooks fire child-first, so among modules that return the same last map (a ResNet stage,
    its last block, that block's ReLU) the outermost one wins: a module called once per forward,
    which is what the CAM methods need. Adaptive pooling (torchvision-style heads) is skipped. This
    is the usual choice for every zoo family: LeNet's S4, AlexNet's and VGG's `features` (ending in
    the last max-pooling), NIN's last mlpconv block, GoogLeNet's inception 5b, ResNet's last stage."""
    order: list[str] = []
    hooks = [m.register_forward_hook(lambda _m, _i, out, n=n: order.append(n) if _is_map(out) else None)
             for n, m in model.named_modules() if n and not isinstance(m, RESAMPLING)]
    try:
        with torch.no_grad():
            model(torch.zeros(1, *input_shape))
    finally:
        for hook in hooks:
            hook.remove()
    if not order:
        raise CnnlabError("this model has no spatial feature maps (no convolution layers); CAM needs one")
    return order[-1]


def _is_map(out) -> bool:
    return isinstance(out, torch.Tensor) and out.dim() == 4 and out.shape[-1] * out.shape[-2] > 1


def class_maps(model: nn.Module, x: torch.Tensor, layer: str, targets: list[int], method: str = "gradcam") -> np.ndarray:
    """(len(targets), H, W) maps in [0, 1] (each scaled to its own maximum by the library) for
    input x (1 x C x H x W), one per target class."""
    from pytorch_grad_cam import GradCAM, GradCAMPlusPlus, ScoreCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    if method not in METHODS:
        raise CnnlabError(f"unknown CAM method '{method}'; choose one of: {', '.join(METHODS)}")
    cls = {"gradcam": GradCAM, "gradcam++": GradCAMPlusPlus, "scorecam": ScoreCAM}[method]
    module = dict(model.named_modules())[layer]
    batch = x.repeat(len(targets), 1, 1, 1)
    # the library's progress bars would clutter the command's output (its list of PNG paths)
    with torch.enable_grad(), contextlib.redirect_stderr(io.StringIO()), cls(model=model, target_layers=[module]) as cam:
        maps = cam(input_tensor=batch, targets=[ClassifierOutputTarget(t) for t in targets])
    return np.asarray(maps, dtype=np.float64)


def top_predictions(model: nn.Module, x: torch.Tensor, k: int = 5) -> list[tuple[int, float]]:
    with torch.no_grad():
        probs = torch.softmax(model(x).float(), dim=1)[0]
    values, indices = probs.topk(min(k, probs.numel()))
    return [(int(i), float(v)) for i, v in zip(indices, values)]


def plot_cam(subject: Subject, x: torch.Tensor, out_dir, method: str = "gradcam", target: str | None = None,
             layer: str | None = None, stem: str = "cam"):
    """The image, then the CAM of each top-5 class (or of `target` only), titled with probabilities.
    Returns (png path, maps, [(class index, probability)] of the maps drawn)."""
    model = subject.model
    layer = resolve_layer_name(model, layer) if layer else default_cam_layer(model, subject.input_shape)
    top5 = top_predictions(model, x)
    if target is None:
        shown = top5
    else:
        index = _class_index(subject.classes, target)
        with torch.no_grad():
            shown = [(index, float(torch.softmax(model(x).float(), 1)[0, index]))]
    maps = class_maps(model, x, layer, [c for c, _ in shown], method)
    image = display_image(x, subject.mean, subject.std)
    fig, axes = panels(len(shown) + 1, f"{subject.title}\n{TITLES[method]} at layer {layer}", caption=target is not None)
    show_image(axes[0], image)
    axes[0].set_title("input")
    for ax, (c, p), heat in zip(axes[1:], shown, maps):
        heat_overlay(ax, image, heat, 1.0)
        ax.set_title(f"{_short(subject.classes[c])}\np = {_probability(p)}")
    if target is not None:
        ranked = ", ".join(f"{_short(subject.classes[c])} {_probability(p)}" for c, p in top5)
        per_line = int(fig.get_figwidth() * 72 / (FONT * 0.62))
        fig.text(0.5, 0.1 / fig.get_figheight(), textwrap.fill(f"top-5: {ranked}", per_line), ha="center", va="bottom")
    tag = method.replace("+", "p")
    return save(fig, out_dir / f"{stem}-{tag}.png"), maps, shown


def _class_index(classes: list[str], target: str) -> int:
    if target in classes:
        return classes.index(target)
    if target.isdigit() and int(target) < len(classes):
        return int(target)
    raise CnnlabError(f"unknown class '{target}'; give a class name or an index 0..{len(classes) - 1}")


def _probability(p: float) -> str:
    """Two decimals, or two significant digits below 0.01 (a 1000-class model's top-5 are often there)."""
    return f"{p:.2f}" if p >= 0.01 else f"{p:.1e}"


def _short(name: str, width: int = 16) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"
