"""Checkpoints that survive a kill: `checkpoints/<name>/` with `model.safetensors` (weights) and
`state.pt` (the trainer state: tensors, numbers, strings and containers only, so it loads with
`weights_only=True`; NumPy state is stored as tensors).

A checkpoint is written into `<name>.tmp/` and swapped in by renames (`<name>` -> `<name>.old`,
`<name>.tmp` -> `<name>`, then `<name>.old` is removed). A kill at any moment leaves either
`<name>` or `<name>.old` complete, and `layout.find_checkpoint` falls back to `<name>.old`.
"""

from __future__ import annotations

import io
import os
import pickle
import shutil
from pathlib import Path

import safetensors.torch
import torch
from safetensors import SafetensorError

from cnnlab.errors import CnnlabError
from cnnlab.run.files import fsync, os_error
from cnnlab.run.layout import STATE, WEIGHTS, find_checkpoint

FORMAT = "cnnlab-train-1"  # the "format" entry of a state written by 'cnnlab train'
SCRATCH = "scratch"  # the "engine" entry of a state written by 'cnnlab scratch train'
# what a trainer state must hold to resume from it, with the type each entry must have
TRAINER_KEYS = {"epoch": int, "step": int, "elapsed": float, "optimizer": dict, "schedule": dict, "rng": list,
                "history": list}


def is_cnnlab_state(state) -> bool:
    """True for a state written by 'cnnlab train' or by the NumPy engine ('cnnlab scratch train')."""
    return isinstance(state, dict) and (state.get("format") == FORMAT or state.get("engine") == SCRATCH)


def _write(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def save_checkpoint(checkpoints_dir: str | os.PathLike, name: str, model_state: dict, trainer_state: dict) -> Path:
    """Write checkpoint `name` atomically; returns its folder. Both files are serialised in memory
    and written by plain writes, so a failure (disk full, no permission) is an OSError that names
    its reason; it removes the temporary folder and leaves the previous checkpoint as it was."""
    root = Path(checkpoints_dir)
    final, tmp, old = root / name, root / f"{name}.tmp", root / f"{name}.old"
    weights = safetensors.torch.save({k: v.detach().cpu().contiguous() for k, v in model_state.items()})
    state = io.BytesIO()
    torch.save(trainer_state, state)
    try:
        root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        _write(tmp / WEIGHTS, weights)
        _write(tmp / STATE, state.getvalue())
        fsync(tmp)
    except OSError as error:
        shutil.rmtree(tmp, ignore_errors=True)
        raise os_error(error, final) from None
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
    os.replace(tmp, final)
    fsync(root)
    shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(path: str | os.PathLike, which: str = "last", map_location="cpu") -> tuple[dict, dict, Path]:
    """(weights, trainer state, checkpoint folder) of a run or checkpoint folder; never unpickles
    code, and refuses a checkpoint that neither cnnlab engine wrote."""
    _, folder = find_checkpoint(path, which)
    try:
        weights = safetensors.torch.load_file(str(folder / WEIGHTS), device=str(map_location))
        state = torch.load(folder / STATE, map_location=map_location, weights_only=True)
    except (SafetensorError, pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:160]
        raise CnnlabError(f"{folder} is not a readable cnnlab checkpoint ({reason})") from None
    if not is_cnnlab_state(state):
        raise CnnlabError(f"{folder} is not a cnnlab training checkpoint (no trainer marker in its {STATE})")
    return weights, state, folder


def check_trainer_state(state: dict, folder: Path) -> dict:
    """`state` if 'cnnlab train' can resume from it (every entry present, with its type)."""
    if state.get("format") != FORMAT:
        raise CnnlabError(f"{folder}: the checkpoint was not written by 'cnnlab train' (no {FORMAT} marker)")
    for key, kind in TRAINER_KEYS.items():
        value = state.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise CnnlabError(f"{folder}/{STATE} is damaged: '{key}' is missing or not a {kind.__name__}; "
                              "resume from a copy of the run, or train a new one")
    return state
