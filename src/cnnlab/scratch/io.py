"""Parameters on disk: the engine's own .npz files, and the weights of a cnnlab run (safetensors,
read with safetensors.numpy so torch is never imported)."""

from __future__ import annotations

import os

import numpy as np

from cnnlab.errors import CnnlabError
from cnnlab.run import WEIGHTS, find_checkpoint, read_config
from cnnlab.scratch.layers import Layer
from cnnlab.scratch.models import MODELS, build


def save(model: Layer, path: str | os.PathLike) -> None:
    """Every parameter and buffer under its state-dict name, in one .npz file."""
    np.savez(path, **model.state_dict())


def load(model: Layer, path: str | os.PathLike) -> Layer:
    with np.load(path, allow_pickle=False) as arrays:
        model.load_state_dict(dict(arrays))
    return model


def run_weights(run: str | os.PathLike, which: str = "best") -> dict[str, np.ndarray]:
    """The weights of checkpoint `which` of a run (with the fallbacks of
    `cnnlab.run.find_checkpoint`), as NumPy arrays keyed by state-dict name."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    _, folder = find_checkpoint(run, which)
    try:
        return load_file(str(folder / WEIGHTS))
    except (SafetensorError, OSError) as error:
        raise CnnlabError(f"{folder / WEIGHTS} is not a readable safetensors file ({error})") from None


def load_run(run: str | os.PathLike, which: str = "best") -> Layer:
    """The scratch twin of a run's model (built from its config.json) with the run's weights, in
    evaluation mode. A run whose model or layers the engine lacks is refused in one line."""
    config = read_config(run)
    name = config.get("model")
    if name not in MODELS:
        raise CnnlabError(f"{run} trained {name!r}, whose layers the scratch engine lacks; it builds: {', '.join(MODELS)}")
    model = build(name, **config.get("model_kwargs", {}))
    try:
        model.load_state_dict(run_weights(run, which))
    except (KeyError, ValueError) as error:
        raise CnnlabError(f"the weights of {run} do not fit the scratch {name}: {error.args[0]}") from None
    return model.eval()
