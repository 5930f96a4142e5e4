"""Feature maps: what each layer's channels respond to in one image.

`capture` runs the model once with forward hooks and keeps (clones of) the chosen modules'
outputs; cloning matters because the zoo's ReLUs work in place and would overwrite a kept
convolution output.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.viz.figure import display_image, overlay, rgb, save, tile_figure
from cnnlab.viz.subject import Subject, conv_layers, resolve_layer_name

DEFAULT_LAYERS = 8  # most layers drawn when none are chosen (spread over the network's depth)
OVERLAY = "inferno"


def capture(model: nn.Module, x: torch.Tensor, names: list[str]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """({name: output of that module for x}, model output). Gradients are off."""
    modules = dict(model.named_modules())
    kept: dict[str, torch.Tensor] = {}
    hooks = [modules[n].register_forward_hook(lambda _m, _i, out, n=n: kept.__setitem__(n, out.detach().clone()))
             for n in names]
    try:
        with torch.no_grad():
            logits = model(x)
    finally:
        for hook in hooks:
            hook.remove()
    return kept, logits


def default_layers(model: nn.Module) -> list[str]:
    """Every convolution layer, or DEFAULT_LAYERS of them evenly spread (first and last included)."""
    convs = conv_layers(model)
    if len(convs) <= DEFAULT_LAYERS:
        return convs
    picks = np.linspace(0, len(convs) - 1, DEFAULT_LAYERS).round().astype(int)
    return [convs[i] for i in dict.fromkeys(picks)]


def feature_maps(model: nn.Module, x: torch.Tensor, layers: list[str]) -> dict[str, np.ndarray]:
    """{full layer name: its C x h x w response to the single image x}."""
    names = [resolve_layer_name(model, layer) for layer in layers]
    kept, _ = capture(model, x, names)
    maps = {}
    for name in names:
        if name not in kept:
            raise CnnlabError(f"layer '{name}' did not run in the forward pass; choose another layer")
        out = kept[name]
        if out.dim() != 4:
            raise CnnlabError(f"layer '{name}' outputs shape {tuple(out.shape)}, not feature maps; choose a convolution or pooling layer")
        maps[name] = out[0].float().numpy()
    return maps


def plot_activations(subject: Subject, x: torch.Tensor, out_dir, layers: list[str] | None = None, max_channels: int = 100,
                     stem: str = "image"):
    """One figure per layer: its first `max_channels` response maps on one shared colour scale.
    Returns [(png path, tiles drawn)]."""
    results = []
    for name, maps in feature_maps(subject.model, x, layers or default_layers(subject.model)).items():
        tiles = maps[:max_channels]
        shown = f"first {len(tiles)} of {len(maps)} channels" if len(tiles) < len(maps) else f"{len(maps)} channels"
        title = f"{subject.title}: {name} responses\n{shown}, {maps.shape[1]}x{maps.shape[2]}, one colour scale"
        fig, _, _ = tile_figure(tiles, [f"ch {i}" for i in range(len(tiles))], title, cmap="viridis",
                                vmin=float(tiles.min()), vmax=float(tiles.max()), colorbar="response")
        results.append((save(fig, out_dir / f"{stem}-activations-{name}.png"), tiles))
    return results


def upsample(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """C x h x w maps -> C x H x W (bilinear): response maps laid over the input image."""
    return F.interpolate(torch.from_numpy(maps)[None], size=size, mode="bilinear", align_corners=False)[0].numpy()


def plot_overlay(subject: Subject, x: torch.Tensor, out_dir, layer: str, channels: list[int] | None = None,
                 count: int = 6, stem: str = "image"):
    """Chosen channels' responses (default: the `count` strongest for this image), upsampled and laid
    over the image, each on the scale [0, strongest response among the channels shown]."""
    name = resolve_layer_name(subject.model, layer)
    maps = feature_maps(subject.model, x, [name])[name]
    if channels is None:
        channels = [int(c) for c in np.argsort(-maps.reshape(len(maps), -1).max(1))[:count]]
    bad = [c for c in channels if not 0 <= c < len(maps)]
    if bad:
        raise CnnlabError(f"layer '{name}' has channels 0..{len(maps) - 1}; no channel {bad[0]}")
    image = display_image(x, subject.mean, subject.std)
    heat = upsample(np.maximum(maps[channels], 0), image.shape[:2])
    top = float(heat.max()) or 1.0
    tiles = np.stack([rgb(image)] + [overlay(image, h, top, OVERLAY) for h in heat])
    fig, _, _ = tile_figure(tiles, ["input"] + [f"ch {c}" for c in channels],
                            f"{subject.title}\n{name}: responses over the image (ReLU, one scale)",
                            ncols=min(len(channels) + 1, 7), cmap=OVERLAY, vmin=0.0, vmax=top, colorbar="response")
    return save(fig, out_dir / f"{stem}-overlay-{name}.png"), heat
