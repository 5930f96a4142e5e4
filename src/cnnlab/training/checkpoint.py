"""Checkpoints that survive a kill.

A checkpoint is a folder `checkpoints/<name>/` holding `model.safetensors` (the weights) and
`state.pt` (the trainer state: optimizer, schedule, epoch, step, RNG states — tensors, numbers,
strings and containers only, so it loads with `weights_only=True`; store NumPy state as tensors).

It is written into `<name>.tmp/` and swapped in by renames (`<name>` -> `<name>.old`,
`<name>.tmp` -> `<name>`, then `<name>.old` is removed). A kill at any moment leaves either
`<name>` or `<name>.old` complete, and `load_checkpoint` falls back to `<name>.old`.
"""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from cnnlab.errors import CnnlabError
from cnnlab.rundir import CHECKPOINTS

WEIGHTS = "model.safetensors"
STATE = "state.pt"
FORMAT = "cnnlab-train-1"  # the "format" entry of a state written by 'cnnlab train'


def is_cnnlab_state(state) -> bool:
    """True for a trainer state written by 'cnnlab train' or by the NumPy engine ('cnnlab scratch train')."""
    return isinstance(state, dict) and (state.get("format") == FORMAT or state.get("engine") == "scratch")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_checkpoint(checkpoints_dir: str | os.PathLike, name: str, model_state: dict, trainer_state: dict) -> Path:
    """Write checkpoint `name` atomically; returns its folder."""
    root = Path(checkpoints_dir)
    root.mkdir(parents=True, exist_ok=True)
    final, tmp, old = root / name, root / f"{name}.tmp", root / f"{name}.old"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file({k: v.detach().cpu().contiguous() for k, v in model_state.items()}, str(tmp / WEIGHTS))
    torch.save(trainer_state, tmp / STATE)
    for path in (tmp / WEIGHTS, tmp / STATE, tmp):
        _fsync(path)
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
    os.replace(tmp, final)
    _fsync(root)
    shutil.rmtree(old, ignore_errors=True)
    return final


def find_checkpoint(path: str | os.PathLike, name: str = "last") -> Path:
    """The checkpoint folder for a run directory, a checkpoints/ folder or a checkpoint folder."""
    path = Path(path)
    candidates = [path, path / name, path / f"{name}.old", path / CHECKPOINTS / name, path / CHECKPOINTS / f"{name}.old"]
    for candidate in candidates:
        if (candidate / WEIGHTS).is_file() and (candidate / STATE).is_file():
            return candidate
    raise CnnlabError(f"no cnnlab checkpoint '{name}' in {path} (expected {CHECKPOINTS}/{name}/{WEIGHTS} and {STATE})")


def load_checkpoint(path: str | os.PathLike, name: str = "last", map_location="cpu") -> tuple[dict, dict]:
    """(model_state, trainer_state) from a checkpoint; never unpickles code."""
    folder = find_checkpoint(path, name)
    try:
        model_state = load_file(str(folder / WEIGHTS), device=str(map_location))
        trainer_state = torch.load(folder / STATE, map_location=map_location, weights_only=True)
    except (SafetensorError, pickle.UnpicklingError, RuntimeError, EOFError, OSError) as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:160]
        raise CnnlabError(f"{folder} is not a readable cnnlab checkpoint ({reason})") from None
    return model_state, trainer_state
