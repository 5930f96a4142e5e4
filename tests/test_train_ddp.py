"""torchrun with 2 CPU processes (gloo on loopback), stopped after one epoch and resumed for a
second, ends with the weights one process reaches in two epochs on the same global batches; only
rank 0 writes the run."""

import socket
import subprocess
import sys

import torch

from cnnlab import run as rundir

# 1,437 digits training images minus 157 held out = 1,280 = 20 global batches of 64: every global
# batch is whole, so each rank's half has exactly 32 images and DDP's gradient mean is the batch's.
FLAGS = ["--device", "cpu", "--quiet", "--threads", "1"]
# A gentle constant lr: LeNet's escape from its initial plateau is chaotic enough at high rates to
# turn float rounding (reduction order differs between 1 and 2 processes) into visible differences.
SETTINGS = ["--dataset", "digits", "--val-split", "157", "--batch-size", "64", "--warmup", "0", "--schedule", "constant",
            "--lr", "0.02", "--momentum", "0.5", "--augment", "crop:2", "flip"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_gloo_processes_match_one_process_across_a_resume(tmp_path):
    single, double = tmp_path / "single", tmp_path / "double"

    def torchrun(*argv):
        launch = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr",
                  "127.0.0.1", "--master_port", str(free_port()), "-m", "cnnlab", "train", *argv, *FLAGS]
        return subprocess.Popen(launch, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    first = torchrun("lenet5", *SETTINGS, "--epochs", "1", "--out", str(double))
    subprocess.run([sys.executable, "-m", "cnnlab", "train", "lenet5", *SETTINGS, *FLAGS, "--epochs", "2", "--out",
                    str(single)], check=True)
    output = first.communicate(timeout=600)[0]
    assert first.returncode == 0, output
    second = torchrun("--resume", str(double), "--epochs", "2")
    output = second.communicate(timeout=600)[0]
    assert second.returncode == 0, output

    one, _, _ = rundir.load_model(single, "last")
    two, _, _ = rundir.load_model(double, "last")
    for (name, a), (_, b) in zip(one.state_dict().items(), two.state_dict().items()):
        assert torch.allclose(a, b, rtol=1e-3, atol=1e-4), name
    # the same metrics, summed over both ranks' shards; one metrics file, written by rank 0 only
    a, b = rundir.read_metrics(single), rundir.read_metrics(double)
    assert [(r["epoch"], r["split"]) for r in a] == [(r["epoch"], r["split"]) for r in b]
    for ra, rb in zip(a, b):
        assert abs(ra["loss"] - rb["loss"]) < 1e-4 and abs(ra["top1"] - rb["top1"]) < 2e-3
    assert b[3]["loss"] < b[0]["loss"]  # epoch 2's training loss is lower: it trained
    assert rundir.read_config(double)["world_size"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["double", "single"]


def launcher(node_rank: int, port: int, *argv):
    """One torchrun launcher of a two-'node' job on this machine (c10d rendezvous on 127.0.0.1)."""
    launch = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc_per_node", "1",
              "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-conf",
              f"is_host={int(node_rank == 0)}", "-m", "cnnlab", "train", *map(str, argv), *FLAGS]
    return subprocess.Popen(launch, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def two_nodes(*argv) -> list:
    port = free_port()
    return [launcher(node, port, *argv) for node in (0, 1)]


def test_sigterm_to_one_launcher_stops_both_nodes_at_one_step_and_the_resume_matches(tmp_path):
    import signal
    import time

    stopped, straight = tmp_path / "stopped", tmp_path / "straight"
    job = [*SETTINGS, "--epochs", "3", "--checkpoint-every", "5"]
    launchers = two_nodes("lenet5", *job, "--out", stopped)
    deadline = time.time() + 300
    while not (stopped / "checkpoints" / "last").is_dir():
        assert time.time() < deadline and all(p.poll() is None for p in launchers)
        time.sleep(0.1)
    launchers[1].send_signal(signal.SIGTERM)  # what a scheduler sends one machine
    outputs = [p.communicate(timeout=300)[0] for p in launchers]
    assert all(p.returncode != 0 for p in launchers)
    assert sum("exitcode  : 143" in out for out in outputs) >= 1  # the workers stopped on the signal
    line = next(line for out in outputs for line in out.splitlines() if line.startswith("cnnlab: stopped by"))
    assert f"resume with: the same torchrun launch of cnnlab train --resume {stopped}" in line
    state = torch.load(stopped / "checkpoints" / "last" / "state.pt", weights_only=True)
    assert len(state["rng"]) == 2 and state["step"] < 60  # both ranks' generators, written once, mid-run

    for process in [*two_nodes("--resume", stopped), *two_nodes("lenet5", *job, "--out", straight)]:
        assert process.communicate(timeout=600)[0] is not None and process.returncode == 0
    resumed, _, _ = rundir.load_model(stopped, "last")
    uninterrupted, _, _ = rundir.load_model(straight, "last")
    for (name, a), (_, b) in zip(resumed.state_dict().items(), uninterrupted.state_dict().items()):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-6), name
    assert [(r["epoch"], r["split"]) for r in rundir.read_metrics(stopped)] == \
        [(r["epoch"], r["split"]) for r in rundir.read_metrics(straight)]
