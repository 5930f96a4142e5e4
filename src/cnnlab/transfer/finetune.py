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

import dataclasses
import inspect
from dataclasses import dataclass, field

from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.training.spec import Start, TrainSpec
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


def target_classes(dataset: str, data_dir) -> int:
    """How many classes the new head needs, without loading the data (the trainer does that)."""
    from cnnlab.data.info import dataset_info

    if dataset == "imagefolder":
        from cnnlab.data.imagefolder import class_names

        classes = class_names(data_dir) if data_dir is not None else []
        if len(classes) < 2:
            raise CnnlabError(f"imagefolder needs --data-dir with at least two class folders in train/ "
                              f"(got {data_dir or 'no --data-dir'})")
        return len(classes)
    return len(dataset_info(dataset).classes)


def finetune(source: str, spec: TrainSpec, *, mode: str = "finetune", unfreeze_from: str | None = None,
             backbone_lr_ratio: float = BACKBONE_LR_RATIO, model: str | None = None, data=None):
    """Transfer SOURCE (see `cnnlab.transfer.source`) to `spec.settings.dataset`; returns the
    trainer's RunResult, whose config.json records the source and the plan ("source", "plan"), so
    `cnnlab train --resume` continues it with the same frozen layers and learning rates. `spec.model`
    is ignored: the architecture is the source's. `data`: loaders built by the caller (at the
    source's input size)."""
    from cnnlab.data.info import dataset_info
    from cnnlab.device import seed_everything
    from cnnlab.run.layout import refuse_existing_run_dir
    from cnnlab.training.trainer import train
    from cnnlab.transfer.source import load_source

    settings = spec.settings.validate()
    if spec.out is not None:
        refuse_existing_run_dir(spec.out)
    src = load_source(source, model)
    in_channels = dataset_info(settings.dataset).shape[0] if takes_in_channels(src.name) else src.input_shape[0]
    input_shape = (in_channels, *src.input_shape[1:])
    num_classes = len(data.classes) if data is not None else target_classes(settings.dataset, spec.data_dir)
    seed_everything(settings.seed)  # the new head's initialisation repeats
    plan = plan_transfer(src, num_classes, in_channels, mode, unfreeze_from, backbone_lr_ratio)
    start = Start(plan.model, [{"names": g["names"], "lr_mult": g["lr_mult"]} for g in plan.param_groups],
                  plan.frozen, plan.record)
    spec = dataclasses.replace(spec, model=src.name, model_kwargs=plan.model_kwargs, input_shape=input_shape)
    return train(spec, data=data, start=start)
