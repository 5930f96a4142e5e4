"""Train a pretrained network on a new task: a new classifier head, the backbone frozen or tuned.

Modes (what trains, what stays fixed):

- `features`: the backbone is a fixed feature extractor. Only the new head trains; every other
  module is frozen *and kept in eval mode*, so batch-norm running statistics and dropout stay as
  the source network left them.
- `finetune` (default): everything trains; the backbone at `backbone_lr_ratio` (default 0.1) times
  the head's learning rate, so the new, randomly initialised head does not wreck the pretrained
  features with large early gradients before it has learned anything.
- `unfreeze_from=LAYER` (with `finetune`): the layers registered before LAYER are frozen (and in
  eval mode); LAYER and everything after it trains, the backbone part at the lower rate.

The new head is the builder's own classifier for the target's class count, initialised as the
model's paper says; every other tensor comes from the source. Images are fed at the size the
source was trained at; a change between grey and colour is carried by `adapt.adapt_conv_weight`
when the model takes `in_channels`, else by converting the images.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.transfer.adapt import adapt_conv_weight
from cnnlab.transfer.anatomy import first_conv, head_keys, keys_from, owner
from cnnlab.transfer.source import Source

MODES = ("features", "finetune")
BACKBONE_LR_RATIO = 0.1


@dataclass
class TransferPlan:
    """The model to train and how: what trains at which learning-rate multiplier, what stays fixed."""

    model: nn.Module
    model_kwargs: dict
    head: list[str]  # modules of the new classifier(s)
    param_groups: list[dict]  # {"params", "lr_mult", "names"} for the trainer's optimizer
    frozen: list[str]  # modules kept fixed and in eval mode
    record: dict = field(default_factory=dict)  # what config.json's "source" says about the transfer


def takes_in_channels(name: str) -> bool:
    from cnnlab.models.registry import builder

    return "in_channels" in inspect.signature(builder(name)).parameters


def target_model(source: Source, num_classes: int, in_channels: int) -> tuple[nn.Module, dict, list[str]]:
    """(model, kwargs, head keys): the source's architecture for the new task, every tensor but the
    head copied from the source, the first convolution adapted to `in_channels`."""
    from cnnlab.models import create

    kwargs = {**source.kwargs, "num_classes": num_classes}
    if takes_in_channels(source.name):
        kwargs["in_channels"] = in_channels
    model = create(source.name, **kwargs)
    heads = head_keys(source.name, kwargs)
    state = {k: v for k, v in source.model.state_dict().items() if k not in heads}
    conv = first_conv(model)[0] + ".weight"
    state[conv] = adapt_conv_weight(state[conv], model.get_parameter(conv).shape[1])
    missing, unexpected = model.load_state_dict(state, strict=False)
    if set(missing) != set(heads) or unexpected:  # a zoo inconsistency, not a user error
        raise RuntimeError(f"transfer of {source.name}: missing {missing}, unexpected {unexpected}")
    return model, kwargs, heads


def plan_transfer(source: Source, num_classes: int, in_channels: int, mode: str = "finetune",
                  unfreeze_from: str | None = None, backbone_lr_ratio: float = BACKBONE_LR_RATIO) -> TransferPlan:
    """Build the target model and decide what trains (see the module docstring)."""
    if mode not in MODES:
        raise CnnlabError(f"unknown --mode '{mode}': choose features or finetune")
    if unfreeze_from is not None and mode == "features":
        raise CnnlabError("--unfreeze-from trains part of the backbone: use it with --mode finetune")
    if not backbone_lr_ratio > 0:
        raise CnnlabError(f"--backbone-lr-ratio must be positive, got {backbone_lr_ratio}")
    model, kwargs, heads = target_model(source, num_classes, in_channels)
    head_modules = sorted({owner(k) for k in heads})
    params = dict(model.named_parameters())
    head_params = [k for k in params if owner(k) in head_modules]
    if not head_params:
        raise CnnlabError(f"{source.name}'s classifier has no trainable weights (fixed codes): choose another model")
    if mode == "features":
        trainable = set(head_params)
    elif unfreeze_from is not None:
        trainable = set(keys_from(model, unfreeze_from)) | set(head_params)
    else:
        trainable = set(params)
    backbone = [k for k in params if k in trainable and k not in head_params]
    groups = [{"names": head_params, "lr_mult": 1.0}]
    if backbone:
        groups.append({"names": backbone, "lr_mult": backbone_lr_ratio})
    for group in groups:
        group["params"] = [params[k] for k in group["names"]]
    frozen = frozen_modules(model, trainable)
    record = {
        **source.record,
        "mode": mode,
        "unfreeze_from": unfreeze_from,
        "backbone_lr_ratio": backbone_lr_ratio if backbone else None,
        "new_head": head_modules,
        "frozen": frozen,
        "trainable_parameters": sum(params[k].numel() for k in trainable),
        "input_adaptation": _adaptation(source, kwargs),
    }
    return TransferPlan(model, kwargs, head_modules, groups, frozen, record)


def frozen_modules(model: nn.Module, trainable: set[str]) -> list[str]:
    """The largest modules to keep fixed and in eval mode: those with weights or statistics none of
    which train, plus weightless ones (dropout, pooling) registered before the first trainable weight."""
    first = owner(next(k for k, _ in model.named_parameters() if k in trainable))
    frozen, before_first = [], True
    for name, module in model.named_modules():
        if not name:
            continue
        if name == first:
            before_first = False
        if any(name.startswith(f"{f}.") for f in frozen):
            continue
        keys = [f"{name}.{k}" for k, _ in module.named_parameters()]
        has_state = bool(keys) or any(True for _ in module.buffers())
        if (has_state and not any(k in trainable for k in keys)) or (not has_state and before_first):
            frozen.append(name)
    return frozen


def _adaptation(source: Source, kwargs: dict) -> str:
    have = source.input_shape[0]
    want = kwargs.get("in_channels", have)
    if want == have:
        return "none"
    rule = "sum of the R, G, B filters" if (have, want) == (3, 1) else "filter / 3 on each of R, G, B"
    return f"first convolution {have} -> {want} input channels: {rule}"


def few_shot_indices(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """`per_class` images of every class, chosen with `seed` (sorted: file order kept)."""
    rng = np.random.default_rng(seed)
    chosen = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        if len(members) < per_class:
            raise CnnlabError(f"class {c} has only {len(members)} training images, fewer than --train-per-class {per_class}")
        chosen.append(rng.choice(members, per_class, replace=False))
    return np.sort(np.concatenate(chosen))


def few_shot(data, per_class: int, seed: int, place, split: str = "train") -> None:
    """Keep `per_class` images per class in `data.<split>` (in-memory data sets), chosen with `seed`."""
    from cnnlab.data.loaders import DeviceLoader

    loader = getattr(data, split)
    if not isinstance(loader, DeviceLoader):
        raise CnnlabError("--train-per-class works on the built-in data sets; for an image folder, copy fewer images")
    index = few_shot_indices(loader.labels.cpu().numpy(), per_class, seed)
    index = loader.labels.new_tensor(index)
    setattr(data, split, DeviceLoader(loader.images[index], loader.labels[index], loader.batch_size, loader.adapter,
                                      loader.augment, shuffle=split == "train", seed=loader.seed, rank=place.rank,
                                      world_size=place.world_size))
    data.info.update({f"{split}_size": len(index), f"{split}_subset": f"{per_class} images per class, seed {seed}"})


def finetune(source: str, settings, *, mode: str = "finetune", unfreeze_from: str | None = None,
             backbone_lr_ratio: float = BACKBONE_LR_RATIO, model: str | None = None, train_per_class: int | None = None,
             out=None, runs_root="runs", device: str = "auto", quiet: bool = False, data_dir=None, download=False,
             data=None):
    """Transfer SOURCE (see `cnnlab.transfer.source`) to `settings.dataset`; returns the trainer's
    RunResult, whose run directory records the source and the plan in config.json's "source".
    `data`: loaders built by the caller (as `build_loaders` returns them, at the source's input size)."""
    from cnnlab.data.info import dataset_info
    from cnnlab.training import distributed
    from cnnlab.training.trainer import build_data, seed_everything, train
    from cnnlab.transfer.source import load_source

    settings = settings.validate()
    if out is not None and Path(out).exists():
        raise CnnlabError(f"output folder {out} already exists: choose another --out")
    src = load_source(source, model)
    in_channels = dataset_info(settings.dataset).shape[0] if takes_in_channels(src.name) else src.input_shape[0]
    input_shape = (in_channels, *src.input_shape[1:])
    place = distributed.setup(device)
    if data is None:
        data = build_data(settings, input_shape, place, data_dir, download)
    if train_per_class is not None:
        if train_per_class < 1:
            raise CnnlabError(f"--train-per-class must be a positive whole number, got {train_per_class}")
        few_shot(data, train_per_class, settings.seed, place)
    seed_everything(settings.seed)  # the new head's initialisation repeats
    plan = plan_transfer(src, len(data.classes), in_channels, mode, unfreeze_from, backbone_lr_ratio)
    frozen = [plan.model.get_submodule(name) for name in plan.frozen]
    groups = [{"params": g["params"], "lr_mult": g["lr_mult"]} for g in plan.param_groups]
    return train(src.name, settings, model=plan.model, model_kwargs=plan.model_kwargs, data=data, out=out,
                 runs_root=runs_root, device=device, quiet=quiet, input_shape=input_shape, param_groups=groups,
                 frozen=frozen, source=plan.record)
