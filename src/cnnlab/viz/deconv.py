"""Zeiler & Fergus (2014) deconvnet: project a layer's strongest activation back to pixel space.

The forward pass runs the plain convolution stack (AlexNet's and VGG's `features`) layer by layer,
keeping each max-pooling's switches. For a chosen channel, all activations but its strongest one
are zeroed, and the map goes back down: max-pooling -> unpooling into the recorded switch
positions; ReLU -> ReLU (of the signal going down, not a mask from the forward pass); convolution ->
transposed convolution with the same filters (no bias); local response normalisation, dropout and
batch norm are passed through, as in the paper. Written here (a short walk down the stack)
rather than adding captum for one method; a test checks it against autograd where the two must
agree (without ReLUs, transposed convolution and unpooling with switches are exactly the gradient).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.viz.figure import RED, display_image, pad_row, rgb, save, tile_figure
from cnnlab.viz.sanity import SanityCheck, randomisation_check
from cnnlab.viz.sanity import tiles as sanity_tiles
from cnnlab.viz.subject import Subject, resolve_layer_name

PASS_THROUGH = (nn.LocalResponseNorm, nn.Dropout, nn.BatchNorm2d, nn.Identity)
STACKABLE = (nn.Conv2d, nn.ReLU, nn.MaxPool2d, *PASS_THROUGH)


def layer_stack(model: nn.Module, input_shape, layer: str) -> list[tuple[str, nn.Module]]:
    """The leaf modules run before (and including) `layer`, in execution order; they must form a
    plain chain of convolutions, ReLUs, max-poolings and pass-through layers."""
    target = resolve_layer_name(model, layer)
    calls: list[tuple[str, nn.Module, torch.Tensor, torch.Tensor]] = []
    leaves = [(n, m) for n, m in model.named_modules() if n and not list(m.children())]
    hooks = [m.register_forward_hook(lambda mod, args, out, n=n: calls.append((n, mod, args[0], out))) for n, m in leaves]
    probe = torch.zeros(1, *input_shape)
    try:
        with torch.no_grad():
            model(probe)
    finally:
        for hook in hooks:
            hook.remove()
    names = [n for n, *_ in calls]
    inside = [n for n in names if n == target or n.startswith(target + ".")]
    if not inside:
        raise CnnlabError(f"layer '{target}' does not run on its own in the forward pass; choose a convolution layer")
    calls = calls[: names.index(inside[-1]) + 1]
    previous = probe
    for name, module, given, out in calls:
        if not isinstance(module, STACKABLE):
            raise CnnlabError(f"deconv needs a plain stack of conv/ReLU/max-pool layers (AlexNet, VGG); "
                              f"'{name}' is a {type(module).__name__}")
        if given is not previous:  # a skip connection, a concatenation or a functional op in between
            raise CnnlabError(f"deconv needs a plain stack of conv/ReLU/max-pool layers (AlexNet, VGG); "
                              f"'{name}' does not read the previous layer's output")
        previous = out
    stack = [(name, module) for name, module, *_ in calls]
    return stack


def forward_with_switches(stack, x: torch.Tensor):
    """Run the stack on x; returns (top activation, [(module, input shape, switches or None)])."""
    trace = []
    with torch.no_grad():
        for _, module in stack:
            switches = None
            if isinstance(module, nn.MaxPool2d):
                size = x.shape
                x, switches = F.max_pool2d(x, module.kernel_size, module.stride, module.padding, module.dilation,
                                           ceil_mode=module.ceil_mode, return_indices=True)
                trace.append((module, size, switches))
                continue
            size = x.shape
            x = module(x.clone())  # clone: the zoo's ReLUs work in place
            trace.append((module, size, switches))
    return x, trace


def project_down(top: torch.Tensor, trace) -> torch.Tensor:
    """The deconvnet pass from a (masked) top-layer map down to the input's shape."""
    y = top
    with torch.no_grad():
        for module, size, switches in reversed(trace):
            if isinstance(module, nn.MaxPool2d):
                kernel = module.kernel_size
                y = F.max_unpool2d(y, switches, kernel, module.stride, module.padding, output_size=size[-2:])
            elif isinstance(module, nn.ReLU):
                y = F.relu(y)
            elif isinstance(module, nn.Conv2d):
                expected = F.conv_transpose2d(y, module.weight, None, module.stride, module.padding, 0,
                                              module.groups, module.dilation)
                pad_h, pad_w = size[-2] - expected.shape[-2], size[-1] - expected.shape[-1]
                y = F.conv_transpose2d(y, module.weight, None, module.stride, module.padding, (pad_h, pad_w),
                                       module.groups, module.dilation) if (pad_h or pad_w) else expected
    return y


def projections(model: nn.Module, x: torch.Tensor, input_shape, layer: str, count: int = 9):
    """[(channel, strongest activation, C x H x W projection)] for the `count` channels of `layer`
    with the strongest single activation on x."""
    top, trace = forward_with_switches(layer_stack(model, input_shape, layer), x)
    peaks = top[0].flatten(1).max(1)
    channels = torch.argsort(peaks.values, descending=True)[:count]
    results = []
    for c in channels.tolist():
        masked = torch.zeros_like(top)
        position = int(peaks.indices[c])
        masked[0, c].view(-1)[position] = top[0, c].view(-1)[position]
        results.append((c, float(peaks.values[c]), project_down(masked, trace)[0].numpy()))
    return results


def deconv_check(model: nn.Module, x: torch.Tensor, input_shape, layer: str, **options) -> SanityCheck:
    """The model-randomisation check of the strongest activation's projection (its magnitude,
    summed over colour channels), randomising the stack's convolutions from `layer` down: the
    layers above it play no part in the projection."""
    stack = layer_stack(model, input_shape, layer)
    cascade = [name for name, module in stack if isinstance(module, nn.Conv2d)][::-1]
    return randomisation_check(model, lambda m: np.abs(projections(m, x, input_shape, layer, 1)[0][2]).sum(0),
                               cascade, method="deconvnet", **options)


def plot_deconv(subject: Subject, x: torch.Tensor, out_dir, layer: str, count: int = 9, stem: str = "image",
                sanity: bool = True):
    """The image and the projections of `layer`'s `count` strongest channels, each contrast-stretched
    to [0, 1] around zero (grey = 0) as in the paper's figures; with `sanity`, a second row: the
    strongest projection's magnitude as the weights are randomised. Returns (png path,
    projections, SanityCheck or None)."""
    name = resolve_layer_name(subject.model, layer)
    results = projections(subject.model, x, subject.input_shape, name, count)
    check = deconv_check(subject.model, x, subject.input_shape, name) if sanity else None
    image = display_image(x, subject.mean, subject.std)
    ncols = max(len(results), len(check.steps) if check else 0) + 1
    tiles = [rgb(image)] + [rgb(stretch(projection)) for _, _, projection in results]
    labels = ["input"] + [f"ch {c}, max {peak:.3g}" for c, peak, _ in results]
    colours = ["black"] * len(tiles)
    pad_row(tiles, labels, colours, ncols)
    if check:
        row = sanity_tiles(check, lambda m: rgb(m / (m.max() or 1.0)), f"trained weights\n|ch {results[0][0]}|")
        for whole, part in zip((tiles, labels, colours), row):
            whole += part
        pad_row(tiles, labels, colours, ncols)
    fig, _, _ = tile_figure(np.stack(tiles), labels,
                            f"{subject.title}\n{name}: deconvnet projections of the strongest activations",
                            ncols=ncols, label_colors=colours, caption=check.verdict if check else "",
                            caption_color=RED if check and check.flagged else "black")
    return save(fig, out_dir / f"{stem}-deconv-{name}.png"), results, check


def stretch(projection: np.ndarray) -> np.ndarray:
    """C x H x W signed projection -> H x W (grey) or H x W x 3 in [0, 1], zero at 0.5."""
    scale = np.abs(projection).max() or 1.0
    shown = 0.5 + projection / (2 * scale)
    return shown[0] if shown.shape[0] == 1 else np.moveaxis(shown[:3], 0, -1)
