"""Runs of `cnnlab train` that survive a GPU lent in 10-minute slices (shared by the benchmark scripts).

A run directory is 'done' once summary.md exists (the trainer writes it last), 'resume' when it has
a last checkpoint, else 'new' (a folder killed before its first checkpoint holds nothing to keep).
`train_slice` starts or resumes one run as a subprocess and, when the time is up, stops it with
SIGTERM, on which the trainer writes a checkpoint at the current step: the same call later goes on
from that step (SIGKILL only if it does not stop within a minute).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path


def state_of(run: Path) -> str:
    if (run / "summary.md").exists():
        return "done"
    if (run / "checkpoints" / "last" / "state.pt").exists():
        return "resume"
    return "new"


def train_command(model: str, run: Path, device: str, new_run_flags: list[str]) -> list[str]:
    """The command that continues `run`, or starts it with `new_run_flags` (recipe, budget, data)."""
    base = [sys.executable, "-m", "cnnlab", "train", model, "--quiet", "--device", device]
    if state_of(run) == "resume":
        return base + ["--resume", str(run)]
    if run.exists():
        shutil.rmtree(run)
    return base + ["--out", str(run), *new_run_flags]


def train_slice(model: str, run: Path, device: str, new_run_flags: list[str], seconds: float | None) -> bool:
    """Train until the run is done (True) or `seconds` are spent (False: call again to go on)."""
    if state_of(run) == "done":
        print(f"{model}: done ({run})", flush=True)
        return True
    if seconds is not None and seconds <= 0:
        return False
    command = train_command(model, run, device, new_run_flags)
    print(" ".join(command[2:]), flush=True)
    process = subprocess.Popen(command)
    try:
        code = process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        print(f"{model}: time limit reached; run the same command again to continue from {run}", flush=True)
        return False
    if code != 0:
        raise subprocess.CalledProcessError(code, command)
    return True
