"""A run's model: the zoo model its config.json names, with the weights of one checkpoint."""

from __future__ import annotations

import os

from cnnlab.errors import CnnlabError
from cnnlab.run.checkpoint import load_checkpoint
from cnnlab.run.config import read_config
from cnnlab.run.layout import run_of


def weights_mismatch(expected: dict, weights: dict) -> str | None:
    """The first difference between a model's state dict and `weights`, in words, or None."""
    for key, tensor in expected.items():
        if key not in weights:
            return f"{key} is missing"
        if tuple(weights[key].shape) != tuple(tensor.shape):
            return f"{key} has shape {tuple(weights[key].shape)}, the model needs {tuple(tensor.shape)}"
    extra = next((key for key in weights if key not in expected), None)
    return f"{extra} is not a weight of this model" if extra else None


def load_weights(model, weights: dict, where) -> None:
    """`model.load_state_dict(weights)`, or one line naming the first key that does not fit."""
    problem = weights_mismatch(model.state_dict(), weights)
    if problem is not None:
        raise CnnlabError(f"{where}: the weights do not fit {type(model).__name__} ({problem})")
    model.load_state_dict(weights)


def load_model(path: str | os.PathLike, which: str = "best", map_location="cpu"):
    """(model in eval mode, config, checkpoint folder) of a run directory or a checkpoint folder
    inside one; "best" falls back to "last" (see `layout.find_checkpoint`)."""
    from cnnlab.models import create

    weights, _, folder = load_checkpoint(path, which, map_location)
    run = run_of(folder)
    config = read_config(run)
    try:
        model = create(config["model"], **config["model_kwargs"])
    except (TypeError, ValueError) as error:
        raise CnnlabError(f"{run}/config.json: cannot build {config['model']} with "
                          f"{config['model_kwargs']} ({error})") from None
    load_weights(model, weights, folder)
    return model.to(map_location).eval(), config, folder
