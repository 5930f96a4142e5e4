"""Class activation maps, with their sanity check and the reason when a map is empty.

Grad-CAM (Selvaraju et al. 2017) is computed here: ReLU(sum_k mean(dy_c/dA_k) A_k) for the
target layer's maps A_k, upsampled bilinearly to the input and scaled to its maximum. It is four
lines, equal to pytorch-grad-cam's result (a test checks it), and needs none of that library's
imports (OpenCV, torchvision: about a second), which matters for the report after every training
run and for the sanity check, which computes it many times. Grad-CAM++ and Score-CAM come from
the `grad-cam` library (pytorch-grad-cam, MIT).

cnnlab adds what the methods leave to their caller: a stated rule for the default layer, the
top-5 predictions, the model-randomisation check (`viz.sanity`) and the figure.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.viz.figure import RED, display_image, overlay, pad_row, rgb, save, tile_figure
from cnnlab.viz.sanity import SanityCheck, randomisation_check, weighted_layers
from cnnlab.viz.sanity import tiles as sanity_tiles
from cnnlab.viz.subject import Subject, resolve_layer_name

METHODS = ("gradcam", "gradcam++", "scorecam")
TITLES = {"gradcam": "Grad-CAM", "gradcam++": "Grad-CAM++", "scorecam": "Score-CAM"}
RESAMPLING = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)  # fixed-size resampling, not features: never a CAM layer
MIN_SIDE = 7  # the default layer's map is at least this big (GoogLeNet's, ResNet's and VGG's last maps at 224)
DEFAULT_RULE = f"the last feature map of at least {MIN_SIDE}×{MIN_SIDE}, else the last larger than 1×1"
HEAT = "jet"


def default_cam_layer(model: nn.Module, input_shape) -> str:
    """The layer CAMs use unless told (DEFAULT_RULE): the last module whose output is a feature
    map of at least MIN_SIDE x MIN_SIDE; if no map is that large, the last one larger than 1x1.

    A map smaller than 7x7 is too coarse to show where the evidence lies (LeNet's 5x5 S4, AlexNet's
    6x6 pool5), so the last convolution stage before it is taken. Forward hooks fire child-first,
    so among modules returning the same map (a ResNet stage, its last block, that block's ReLU)
    the outermost wins: a module called once per forward, as the CAM methods need. Adaptive
    pooling (torchvision-style heads) is skipped."""
    maps: list[tuple[str, int]] = []
    hooks = [m.register_forward_hook(lambda _m, _i, out, n=n: maps.append((n, min(out.shape[-2:]))) if _is_map(out)
                                     else None)
             for n, m in model.named_modules() if n and not isinstance(m, RESAMPLING)]
    try:
        with torch.no_grad():
            model(torch.zeros(1, *input_shape))
    finally:
        for hook in hooks:
            hook.remove()
    if not maps:
        raise CnnlabError("this model has no spatial feature maps (no convolution layers); CAM needs one")
    large = [name for name, side in maps if side >= MIN_SIDE]
    return large[-1] if large else maps[-1][0]


def _is_map(out) -> bool:
    return isinstance(out, torch.Tensor) and out.dim() == 4 and out.shape[-1] * out.shape[-2] > 1


def grad_cam(model: nn.Module, x: torch.Tensor, layer: str, targets: list[int]) -> np.ndarray:
    """(len(targets), H, W) Grad-CAM maps of input x (1 x C x H x W), each scaled to [0, 1] by its
    maximum (an empty map stays 0)."""
    module = dict(model.named_modules())[layer]
    kept = {}
    hook = module.register_forward_hook(lambda _m, _i, out: kept.__setitem__("maps", out))
    try:
        with torch.enable_grad():
            logits = model(x)
            maps = kept["maps"]
            rows = []
            for t in targets:
                gradient, = torch.autograd.grad(logits[0, t], maps, retain_graph=True)
                rows.append(F.relu((gradient.mean((2, 3), keepdim=True) * maps).sum(1)))
    finally:
        hook.remove()
    cams = F.interpolate(torch.cat(rows)[:, None].detach(), size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    cams = cams - cams.amin((1, 2), keepdim=True)
    return (cams / (cams.amax((1, 2), keepdim=True) + 1e-7)).double().numpy()


def class_maps(model: nn.Module, x: torch.Tensor, layer: str, targets: list[int], method="gradcam") -> np.ndarray:
    """(len(targets), H, W) maps in [0, 1] (each scaled to its own maximum) for input x.
    `method`: a name in METHODS, or any function (model, x, layer, targets) -> such maps."""
    if callable(method):
        return np.asarray(method(model, x, layer, targets), dtype=np.float64)
    if method not in METHODS:
        raise CnnlabError(f"unknown CAM method '{method}'; choose one of: {', '.join(METHODS)}")
    if method == "gradcam":
        return grad_cam(model, x, layer, targets)
    from pytorch_grad_cam import GradCAMPlusPlus, ScoreCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    cls = {"gradcam++": GradCAMPlusPlus, "scorecam": ScoreCAM}[method]
    module = dict(model.named_modules())[layer]
    batch = x.repeat(len(targets), 1, 1, 1)
    # the library's progress bars would clutter the command's output (its list of PNG paths)
    with torch.enable_grad(), contextlib.redirect_stderr(io.StringIO()), cls(model=model, target_layers=[module]) as cam:
        maps = cam(input_tensor=batch, targets=[ClassifierOutputTarget(t) for t in targets])
    return np.asarray(maps, dtype=np.float64)


def cam_check(model: nn.Module, x: torch.Tensor, layer: str, target: int, method: str, input_shape,
              **options) -> SanityCheck:
    """The model-randomisation check of one class's map: every weighted layer, top first."""
    return randomisation_check(model, lambda m: class_maps(m, x, layer, [target], method)[0],
                               weighted_layers(model, input_shape)[::-1], method=title(method), **options)


def empty_reason(model: nn.Module, x: torch.Tensor, layer: str) -> str:
    """Why a class's map is all zero: the layer's maps are zero, or their weighted sum is <= 0
    everywhere (the methods' final ReLU keeps only what raises the class score)."""
    from cnnlab.viz.activations import capture

    maps = capture(model, x, [layer])[0][layer]
    if not maps.any():
        return f"{layer} outputs only zeros for this image"
    return (f"the weighted sum of the {layer} maps is ≤ 0 everywhere, so the final ReLU leaves nothing: "
            "no location at this layer raises the class score")


def title(method) -> str:
    return TITLES[method] if method in TITLES else getattr(method, "__name__", str(method))


def top_predictions(model: nn.Module, x: torch.Tensor, k: int = 5) -> list[tuple[int, float]]:
    with torch.no_grad():
        probs = torch.softmax(model(x).float(), dim=1)[0]
    values, indices = probs.topk(min(k, probs.numel()))
    return [(int(i), float(v)) for i, v in zip(indices, values)]


def plot_cam(subject: Subject, x: torch.Tensor, out_dir, method="gradcam", target: str | None = None,
             layer: str | None = None, stem: str = "image", sanity: bool = True):
    """The image, then the map of each top-5 class (or of `target` only) over it with a colour bar;
    with `sanity`, a second row: the first class's map as the weights are randomised, with the
    rank correlations and the verdict. Returns (png path, maps, [(class, probability)] drawn,
    SanityCheck or None)."""
    model = subject.model
    name = resolve_layer_name(model, layer) if layer else default_cam_layer(model, subject.input_shape)
    top5 = top_predictions(model, x)
    if target is None:
        shown = top5
    else:
        index = _class_index(subject.classes, target)
        with torch.no_grad():
            shown = [(index, float(torch.softmax(model(x).float(), 1)[0, index]))]
    maps = class_maps(model, x, name, [c for c, _ in shown], method)
    check = cam_check(model, x, name, shown[0][0], method, subject.input_shape) if sanity else None
    empty = [i for i, heat in enumerate(maps) if not heat.any()]
    image = display_image(x, subject.mean, subject.std)
    ncols = max(len(shown), len(check.steps) if check else 0) + 1
    tiles = [rgb(image)] + [overlay(image, heat, 1.0, HEAT) for heat in maps]
    labels = [f"model input\n{'×'.join(map(str, x.shape[1:]))}"]
    labels += [f"{_short(subject.classes[c])}\np = {_probability(p)}" + (", EMPTY" if i in empty else "")
               for i, (c, p) in enumerate(shown)]
    colours = ["black"] + [RED if i in empty else "black" for i in range(len(shown))]
    pad_row(tiles, labels, colours, ncols)
    notes = []
    if target is not None:
        notes.append("top-5: " + ", ".join(f"{_short(subject.classes[c])} {_probability(p)}" for c, p in top5))
    if empty:
        notes.append(f"empty map{'s' if len(empty) > 1 else ''} "
                     f"({', '.join(_short(subject.classes[shown[i][0]]) for i in empty)}): {empty_reason(model, x, name)}")
    if check:
        row = sanity_tiles(check, lambda heat: overlay(image, heat, 1.0, HEAT),
                           f"trained weights\n{_short(subject.classes[shown[0][0]])}")
        for whole, part in zip((tiles, labels, colours), row):
            whole += part
        pad_row(tiles, labels, colours, ncols)
        notes.append(check.verdict)
    rule = "chosen with --layer" if layer else f"the default rule: {DEFAULT_RULE}"
    fig, _, _ = tile_figure(np.stack(tiles), labels, f"{subject.title}: {title(method)} at layer {name}\n({rule})",
                            ncols=ncols, cmap=HEAT, vmin=0.0, vmax=1.0, colorbar="map value (1 = its maximum)",
                            label_colors=colours, caption="\n".join(notes),
                            caption_color=RED if check and check.flagged else "black")
    tag = (method if isinstance(method, str) else title(method)).replace("+", "p")
    chosen = f"-class-{subject.classes[shown[0][0]]}" if target is not None else ""
    return save(fig, out_dir / f"{stem}-{tag}-{name}{chosen}.png"), maps, shown, check


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
