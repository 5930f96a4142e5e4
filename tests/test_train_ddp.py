"""torchrun with 2 CPU processes (gloo on loopback) ends with the weights one process reaches on
the same global batches; only rank 0 writes the run."""

import socket
import subprocess
import sys

import torch

from cnnlab import rundir

# 1,437 digits training images minus 157 held out = 1,280 = 20 global batches of 64: every global
# batch is whole, so each rank's half has exactly 32 images and DDP's gradient mean is the batch's.
FLAGS = ["lenet5", "--dataset", "digits", "--val-split", "157", "--batch-size", "64", "--epochs", "1", "--warmup", "0",
         "--device", "cpu", "--quiet", "--threads", "1", "--augment", "crop:2", "flip"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_gloo_processes_match_one_process(tmp_path):
    single, double = tmp_path / "single", tmp_path / "double"
    launch = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
              "--master_port", str(free_port())]
    ddp = subprocess.Popen([*launch, "-m", "cnnlab", "train", *FLAGS, "--out", str(double)],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    subprocess.run([sys.executable, "-m", "cnnlab", "train", *FLAGS, "--out", str(single)], check=True)
    output = ddp.communicate(timeout=600)[0]
    assert ddp.returncode == 0, output

    one, _ = rundir.load_model(single, "last")
    two, _ = rundir.load_model(double, "last")
    for (name, a), (_, b) in zip(one.state_dict().items(), two.state_dict().items()):
        assert torch.allclose(a, b, rtol=1e-3, atol=1e-4), name
    # the same metrics, summed over both ranks' shards; one metrics file, written by rank 0 only
    a, b = rundir.read_metrics(single), rundir.read_metrics(double)
    assert [(r["epoch"], r["split"]) for r in a] == [(r["epoch"], r["split"]) for r in b]
    for ra, rb in zip(a, b):
        assert abs(ra["loss"] - rb["loss"]) < 1e-4 and abs(ra["top1"] - rb["top1"]) < 2e-3
    assert b[-1]["split"] == "test" and b[-1]["top1"] > 0.15  # above chance (0.10): it trained
    assert rundir.read_config(double)["world_size"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["double", "single"]
