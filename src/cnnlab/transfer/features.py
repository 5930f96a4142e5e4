"""Embeddings of one layer for a whole data set, saved as `.npz` for scikit-learn and friends.

The layer's output is caught by a forward hook while the model runs in eval mode and flattened to
one row per image. Without a layer name the embedding is the input of the classifier head (ResNet:
the pooled 512 or 2048 features; LeNet-5: F6's 84 units), the usual "penultimate layer" features.
The `.npz` holds `<split>_features` (N x D float32) and `<split>_labels` (N int64) for the train
and test splits (training rows in the loader's shuffled order, each with its own label; no
augmentation), plus `classes`, `layer` and `model` as strings; it loads with `np.load(path)`
(no pickle).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from cnnlab.transfer.anatomy import head_keys, owner, require_layer


def penultimate(model: nn.Module, name: str, kwargs: dict) -> str:
    """The main classifier head's module (registered last): its *input* is the default embedding."""
    return owner(head_keys(name, kwargs)[-1])


@torch.no_grad()
def embed(model: nn.Module, layer: str, batches, *, head_input: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(features N x D, labels N) of `layer`'s output (or input, with `head_input`) over (x, y) batches."""
    module = model.get_submodule(require_layer(model, layer))
    caught = []

    def keep(tensor):  # a copy: an in-place ReLU after the layer must not change what was caught
        caught.append(tensor.detach().flatten(1).to("cpu", torch.float32, copy=True))

    if head_input:
        hook = module.register_forward_pre_hook(lambda _, inputs: keep(inputs[0]))
    else:
        hook = module.register_forward_hook(lambda _, __, output: keep(output))
    labels = []
    model.eval()
    try:
        for x, y in batches:
            model(x)
            labels.append(y.cpu())
    finally:
        hook.remove()
    return torch.cat(caught).numpy(), torch.cat(labels).numpy().astype(np.int64)


def extract_run_features(run: str | os.PathLike, dataset: str | None = None, layer: str | None = None,
                         out: str | os.PathLike | None = None, *, batch_size: int = 256, data_dir=None,
                         download: bool = False, device: str = "auto", force: bool = False) -> tuple[Path, dict]:
    """Embed the train and test splits of `dataset` (default: the run's, read from where it was
    found) with a run's best model; images are prepared exactly as the run's were. An existing
    file is replaced only with `force`. Returns (npz path, {split: shape})."""
    from cnnlab.data.loaders import build_loaders
    from cnnlab.device import pick_device
    from cnnlab.run import check_output, data_dir_of, write_atomic
    from cnnlab.run.model import load_model

    run = Path(run)
    device = pick_device(device)
    model, config, _ = load_model(run, map_location=device)
    own = dataset is None or dataset == config["dataset"]["dataset"]
    dataset = dataset or config["dataset"]["dataset"]
    head_input = layer is None
    layer = layer or penultimate(model, config["model"], config.get("model_kwargs", {}))
    require_layer(model, layer)
    where = f"input of {layer}" if head_input else layer
    out = check_output(Path(out) if out else run / "features" / f"{dataset}-{where.replace(' ', '-')}.npz", force)
    data = build_loaders(dataset, tuple(config["input_shape"]), batch_size,
                         data_dir=data_dir_of(config, data_dir) if own else data_dir, download=download, device=device)
    arrays, shapes = {}, {}
    for split, loader in (("train", data.train), ("test", data.test)):
        features, labels = embed(model, layer, loader, head_input=head_input)
        arrays[f"{split}_features"], arrays[f"{split}_labels"] = features, labels
        shapes[split] = features.shape
    extra = {"classes": np.array(data.classes), "layer": np.array(where), "model": np.array(config["model"])}
    write_atomic(out, lambda tmp: np.savez_compressed(tmp, **arrays, **extra))
    return out, shapes
