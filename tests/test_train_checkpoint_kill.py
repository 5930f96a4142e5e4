"""A process killed with SIGKILL while writing a checkpoint leaves the previous one readable."""

import os
import random
import signal
import subprocess
import sys
import time

import torch

from cnnlab.run import write_config
from cnnlab.run.checkpoint import load_checkpoint

# Writes checkpoint "last" over and over; generation k has every weight equal to k and state k.
# Big enough (8 MB) that a kill often lands in the middle of a write.
WRITER = """
import sys, torch
from cnnlab.run.checkpoint import save_checkpoint
folder = sys.argv[1]
for k in range(1, 10**6):
    state = {"format": "cnnlab-train-1", "generation": k, "rng": torch.get_rng_state()}
    save_checkpoint(folder, "last", {"w": torch.full((2_000_000,), float(k))}, state)
    print(k, flush=True)
"""


def test_sigkill_during_checkpoint_writes_never_loses_the_previous_one(tmp_path):
    rng = random.Random(0)
    write_config(tmp_path, {"model": "lenet5", "model_kwargs": {}, "input_shape": [1, 32, 32],
                            "dataset": {"dataset": "digits", "classes": ["0", "1"], "mean": [0.5], "std": [0.5]}})
    folder = tmp_path / "checkpoints"
    newest_seen = 0
    for attempt in range(3):
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(folder)], stdout=subprocess.PIPE, text=True)
        assert int(writer.stdout.readline()) >= 1  # at least one complete checkpoint of this writer
        time.sleep(rng.uniform(0.0, 0.4))
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait()
        weights, state, _ = load_checkpoint(tmp_path, "last")
        generation = state["generation"]
        assert generation >= 1
        assert torch.equal(weights["w"], torch.full((2_000_000,), float(generation)))  # weights match state
        assert state["rng"].dtype == torch.uint8
        newest_seen = max(newest_seen, generation)
    assert newest_seen >= 1
