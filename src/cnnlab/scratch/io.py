"""Parameters on disk: the engine's own .npz files, and the weights of a cnnlab run (safetensors,
read with safetensors.numpy so torch is never imported)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from cnnlab import rundir
from cnnlab.errors import CnnlabError
from cnnlab.scratch.layers import Layer
from cnnlab.scratch.models import MODELS, build

WEIGHTS = "model.safetensors"  # the file name cnnlab.training.checkpoint writes (kept torch-free here)


def save(model: Layer, path: str | os.PathLike) -> None:
    """Every parameter and buffer under its state-dict name, in one .npz file."""
    np.savez(path, **model.state_dict())


def load(model: Layer, path: str | os.PathLike) -> Layer:
    with np.load(path, allow_pickle=False) as arrays:
        model.load_state_dict(dict(arrays))
    return model


def run_weights(run: str | os.PathLike, which: str = "best") -> dict[str, np.ndarray]:
    """The weights of checkpoint `which` of a run (falling back to "last", and to a "*.old" copy
    left by an interrupted save), as NumPy arrays keyed by state-dict name."""
    from safetensors.numpy import load_file

    folder = Path(run) / rundir.CHECKPOINTS
    for name in (which, f"{which}.old", "last", "last.old"):
        if (folder / name / WEIGHTS).is_file():
            return load_file(str(folder / name / WEIGHTS))
    raise CnnlabError(f"{run} has no {rundir.CHECKPOINTS}/{which}/{WEIGHTS}: give a run folder written by 'cnnlab train'")


def load_run(run: str | os.PathLike, which: str = "best") -> Layer:
    """The scratch twin of a run's model (built from its config.json) with the run's weights, in
    evaluation mode. A run whose model or layers the engine lacks is refused in one line."""
    config = rundir.read_config(run)
    name = config.get("model")
    if name not in MODELS:
        raise CnnlabError(f"{run} trained {name!r}, whose layers the scratch engine lacks; it builds: {', '.join(MODELS)}")
    model = build(name, **config.get("model_kwargs", {}))
    try:
        model.load_state_dict(run_weights(run, which))
    except (KeyError, ValueError) as error:
        raise CnnlabError(f"the weights of {run} do not fit the scratch {name}: {error.args[0]}") from None
    return model.eval()
