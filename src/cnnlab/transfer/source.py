"""Where a transfer starts: a trained network and what it was trained on.

SOURCE is one of
- a cnnlab run directory (its best checkpoint, or last when it has no best);
- a `.safetensors` file: one written by `cnnlab export` names its model in its header; any other
  needs `--model`, or is recognised when it matches a torchvision-compatible zoo model;
- a torchvision checkpoint file (`.pth` / `.pt`, a state dict), read with `weights_only=True` so it
  cannot run code, for the torchvision-compatible zoo models (architecture recognised from it);
- `torchvision:NAME.WEIGHTS`, e.g. `torchvision:resnet18.IMAGENET1K_V1` (downloads; needs a network).
"""

from __future__ import annotations

import hashlib
import json
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.transfer.anatomy import first_conv
from cnnlab.transfer.interop import TORCHVISION_NAMES, match_architecture

TORCHVISION_PREFIX = "torchvision:"


@dataclass
class Source:
    """A pretrained model and the facts a transfer needs about it."""

    model: nn.Module  # eval mode, weights loaded
    name: str  # zoo name
    kwargs: dict  # builder arguments (num_classes, in_channels, ...)
    input_shape: tuple[int, int, int]  # C, H, W the model was trained at
    record: dict = field(default_factory=dict)  # for the new run's config.json "source"


def load_source(spec: str, model: str | None = None) -> Source:
    """Load SOURCE (see the module docstring); `model` names the zoo architecture of bare weights."""
    if spec.startswith(TORCHVISION_PREFIX):
        return _from_torchvision_weights(spec[len(TORCHVISION_PREFIX):])
    path = Path(spec)
    if path.is_dir():
        return _from_run(path)
    if not path.is_file():
        raise CnnlabError(f"source {spec} is neither a run folder nor a weights file (nor torchvision:NAME.WEIGHTS)")
    if path.suffix == ".safetensors":
        state, metadata = _read_safetensors(path)
    else:
        state, metadata = _read_torch_state(path), {}
    record = {"kind": "file", "path": str(path.resolve()), "sha256": _sha256(path)}
    if "cnnlab_model" in metadata:
        name, kwargs = metadata["cnnlab_model"], json.loads(metadata.get("model_kwargs", "{}"))
        shape = json.loads(metadata["input_shape"]) if "input_shape" in metadata else None
        record.update({k: metadata[k] for k in ("source_run", "dataset") if k in metadata})
    elif model:
        name, kwargs = match_architecture(state, [model], _channels_argument(model, state))
        shape = None
    else:
        name, kwargs = match_architecture(state)
        shape = None
    return _build(name, kwargs, state, shape, record)


def _build(name: str, kwargs: dict, state: dict, input_shape, record: dict) -> Source:
    from cnnlab.models import create
    from cnnlab.run.model import load_weights

    model = create(name, **kwargs)
    load_weights(model, state, f"{record.get('path') or record.get('weights')} ({name} {kwargs or ''})".strip())
    return _source(model, name, kwargs, input_shape, record)


def _source(model: nn.Module, name: str, kwargs: dict, input_shape, record: dict) -> Source:
    from cnnlab.models import card

    in_channels = first_conv(model)[1].in_channels
    shape = tuple(input_shape) if input_shape else (in_channels, *card(name).input_shape[1:])
    record = {**record, "model": name, "model_kwargs": kwargs, "input_shape": list(shape)}
    return Source(model.eval(), name, kwargs, shape, record)


def _channels_argument(name: str, state: dict) -> dict:
    """{"in_channels": C} when bare weights of model `name` read C channels, not the card's default."""
    from cnnlab.models import card

    conv = next((v for v in state.values() if v.ndim == 4), None)
    if conv is None or conv.shape[1] == card(name).input_shape[0]:
        return {}
    return {"in_channels": int(conv.shape[1])}


def _from_run(path: Path) -> Source:
    from cnnlab.run.model import load_model

    model, config, _ = load_model(path)
    dataset = config.get("dataset") or {}
    record = {"kind": "run", "path": str(path.resolve()), "dataset": dataset.get("dataset")}
    return _source(model, config["model"], config.get("model_kwargs", {}), config.get("input_shape"), record)


def _read_safetensors(path: Path) -> tuple[dict, dict]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}, f.metadata() or {}
    except (SafetensorError, OSError) as error:
        raise CnnlabError(f"{path} is not a readable safetensors file ({error})") from None


def _read_torch_state(path: Path) -> dict:
    """A state dict from a torch checkpoint, refusing anything that would need to run code."""
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as error:
        reason = str(error).splitlines()[0]
        raise CnnlabError(f"{path} is not a plain weights file that loads with weights_only=True ({reason})") from None
    for key in ("state_dict", "model"):  # the usual wrappers around a state dict
        if isinstance(loaded, dict) and isinstance(loaded.get(key), dict):
            loaded = loaded[key]
    if not isinstance(loaded, dict) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise CnnlabError(f"{path} holds no state dict (name -> tensor): save model.state_dict()")
    return loaded


def _from_torchvision_weights(spec: str) -> Source:
    """`resnet18.IMAGENET1K_V1` -> torchvision's published weights (downloaded) in the zoo twin."""
    import torchvision

    arch, _, weights_name = spec.partition(".")
    ours = {tv: zoo for zoo, tv in TORCHVISION_NAMES.items()}
    if arch not in ours:
        raise CnnlabError(f"torchvision model '{arch}' has no zoo twin; use one of {', '.join(ours)}")
    try:
        weights = torchvision.models.get_model_weights(arch)[weights_name or "DEFAULT"]
        state = weights.get_state_dict(progress=True)
    except KeyError:
        raise CnnlabError(f"torchvision has no weights '{weights_name}' for {arch}") from None
    except OSError as error:
        raise CnnlabError(f"cannot download torchvision weights {spec} ({error}): download the .pth file and give its path") from None
    crop = weights.transforms().crop_size[0]
    name, kwargs = match_architecture(state, [ours[arch]])
    record = {"kind": "torchvision", "weights": f"{arch}.{weights.name}", "url": weights.url}
    return _build(name, kwargs, state, (3, crop, crop), record)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
