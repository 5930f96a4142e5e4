"""Where and how a model computes: the device, the precision, autocast, and seeding.

One module for everything that runs a model (training, evaluation, transfer, viz, explore), so
"auto" means the same everywhere: CUDA when present, bf16 autocast there, fp32 on the CPU.
"""

from __future__ import annotations

import contextlib
import random

import numpy as np
import torch

from cnnlab.errors import CnnlabError


def pick_device(requested: str = "auto", local_rank: int = 0) -> torch.device:
    """"auto" is CUDA when present; under torchrun each local rank gets its own GPU."""
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda"):
        if not torch.cuda.is_available():
            raise CnnlabError("--device cuda asked for, but PyTorch sees no CUDA GPU: use --device cpu or auto")
        if requested == "cuda":
            requested = f"cuda:{local_rank}"
    try:
        return torch.device(requested)
    except RuntimeError:
        raise CnnlabError(f"unknown --device '{requested}': use auto, cpu or cuda") from None


def resolve_precision(precision: str, device: torch.device) -> str:
    """"auto" is bf16 autocast on CUDA and fp32 elsewhere (CPU bf16 is slower and less exact)."""
    if precision == "auto":
        return "bf16" if device.type == "cuda" else "fp32"
    return precision


def autocast_for(precision: str, device: torch.device):
    """A factory of autocast contexts for the precision (fp32: no autocast)."""
    if precision == "bf16":
        return lambda: torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext


def seed_everything(seed: int) -> None:
    """Python's, NumPy's and torch's generators (all devices), so a CPU run repeats bit for bit."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
