"""Runs that nothing can break: SIGKILL at any instant (mid-epoch, in the middle of a checkpoint,
of the metrics or of the predictions), SIGTERM and SIGINT, two writers at once, a full disk. After
each, resuming ends with the weights of an uninterrupted run, byte for byte on the CPU, and
metrics.jsonl holds every finished epoch exactly once."""

import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from cnnlab import run as rundir

# 1,437 digits in batches of 64: 23 steps an epoch, a mid-epoch checkpoint every 5 steps
FLAGS = ["--dataset", "digits", "--epochs", "3", "--batch-size", "64", "--device", "cpu", "--threads", "1",
         "--checkpoint-every", "5", "--quiet"]
TIMING = ("time", "images_per_s")  # what differs between two runs of the same computation

# Runs `cnnlab ARGS...` and kills itself with SIGKILL at the K-th call of STAGE, in the middle of
# that write where the stage is a write: a kill at an exact instant, which random timing rarely hits.
# A STAGE named after a signal (SIGTERM) sends that signal instead, at optimizer step K.
KILLER = r"""
import os, signal, sys
stage, k, args = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
calls = [0]

def due():
    calls[0] += 1
    return calls[0] == k

def die():
    os.kill(os.getpid(), signal.SIGKILL)

import cnnlab.run.checkpoint as checkpoint, cnnlab.run.predictions as predictions, cnnlab.run as run
import cnnlab.training.trainer as trainer
from cnnlab.training.control import Control
if stage.startswith("SIG"):  # the signal STAGE arrives from outside just before step k's stop check
    real_poll = Control.poll
    def poll(self, step):
        if step == k:
            os.kill(os.getpid(), getattr(signal, stage))
        return real_poll(self, step)
    Control.poll = poll
elif stage == "state":  # half of a checkpoint's state.pt written
    real_write = checkpoint._write
    def write(path, data):
        if path.name == "state.pt" and due():
            real_write(path, data[: len(data) // 2])
            die()
        real_write(path, data)
    checkpoint._write = write
elif stage == "metrics":  # half of an epoch's records appended
    real_append = run.append_metrics
    def append(folder, records):
        if due():
            with open(os.path.join(folder, "metrics.jsonl"), "a") as f:
                f.write('{"epoch": 1, "split": "tra')
            die()
        real_append(folder, records)
    run.append_metrics = append
elif stage == "after-checkpoint":  # the epoch's checkpoint written, its records not yet
    real_checkpoint = trainer.save_checkpoint
    def save_checkpoint(*a):
        folder = real_checkpoint(*a)
        if due():
            die()
        return folder
    trainer.save_checkpoint = save_checkpoint
elif stage == "report":  # training finished, its summary written, the report not yet
    import cnnlab.viz
    def write_report(*a, **kw):
        if due():
            die()
    cnnlab.viz.write_report = write_report
elif stage == "predictions":  # half of predictions.npz written
    real_savez = predictions.np.savez
    def savez(path, **arrays):
        if due():
            with open(path, "wb") as f:
                f.write(b"PK\x03\x04half")
            die()
        real_savez(path, **arrays)
    predictions.np.savez = savez
from cnnlab.cli import main
sys.exit(main(args))
"""


def cnnlab(*args, stage=None, k=0, **popen):
    argv = [sys.executable, "-c", KILLER, stage, str(k)] if stage else [sys.executable, "-m", "cnnlab"]
    return subprocess.Popen([*argv, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            **popen)


def finished(process, timeout=300) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run everything is compared with."""
    out = tmp_path_factory.mktemp("reference") / "run"
    code, _, err = finished(cnnlab("train", "lenet5", *FLAGS, "--out", out))
    assert code == 0, err
    return out


def same_as_reference(run: Path, reference: Path) -> None:
    for name in ("last", "best"):
        weights = run / "checkpoints" / name / "model.safetensors"
        assert weights.read_bytes() == (reference / "checkpoints" / name / "model.safetensors").read_bytes(), name
    strip = lambda records: [{k: v for k, v in r.items() if k not in TIMING} for r in records]  # noqa: E731
    assert strip(rundir.read_metrics(run)) == strip(rundir.read_metrics(reference))
    assert (run / "predictions.npz").read_bytes() == (reference / "predictions.npz").read_bytes()
    assert not [p for p in run.rglob("*") if ".tmp" in p.name], "a temporary file was left behind"


def resume_until_done(run: Path, rng: random.Random | None = None, kills: int = 0) -> int:
    """`cnnlab train --resume` until it finishes; the first `kills` attempts are SIGKILLed at random."""
    for attempt in range(20):
        process = cnnlab("train", "--resume", run, "--quiet")
        if attempt < kills:
            time.sleep(rng.uniform(2.0, 4.0))  # past start-up (importing torch), into training
            process.kill()
        code, _, err = finished(process)
        if code == 0:
            return attempt + 1
        assert code == -signal.SIGKILL, err
    raise AssertionError("the run never finished")


# One run killed five times, each time at an exact instant of a write, resumed after each kill.
# Calls are counted in each process. Checkpoints of a fresh run: "last" at steps 5, 10, 15, 20
# (mid-epoch 1), "last" and "best" at 23 (the end of epoch 1), "last" at 25 (mid-epoch 2), ...
KILLS = [
    ("state", 2),  # half of the step-10 checkpoint: resume from step 5, mid-epoch 1
    ("after-checkpoint", 5),  # epoch 1's "last" and "best" written, its records not: resume at its end
    ("metrics", 1),  # epoch 2's records torn in the middle of the line
    ("predictions", 1),  # epoch 3's predictions half-written (before its checkpoint)
    ("state", 1),  # half of the first checkpoint after that: mid-epoch 3
]


def test_sigkill_in_the_middle_of_every_kind_of_write_loses_nothing(tmp_path, reference):
    run = tmp_path / "run"
    for attempt, (stage, k) in enumerate(KILLS):
        args = ("train", "--resume", run) if attempt else ("train", "lenet5", *FLAGS, "--out", run)
        code, _, err = finished(cnnlab(*args, stage=stage, k=k))
        assert code == -signal.SIGKILL, f"{stage} {k}: {err}"
    assert resume_until_done(run) == 1
    same_as_reference(run, reference)


def test_a_run_killed_while_writing_its_report_is_completed_by_resume(tmp_path, reference):
    run = tmp_path / "run"
    code, _, err = finished(cnnlab("train", "lenet5", *FLAGS, "--out", run, stage="report", k=1))
    assert code == -signal.SIGKILL, err
    assert (run / "summary.json").is_file() and not (run / "report.html").exists()
    code, out, err = finished(cnnlab("train", "--resume", run))
    assert code == 0, err
    assert err.strip() == f"cnnlab: {run} had finished training; writing its missing summary and report"
    assert out.splitlines()[-1] == f"report: {run / 'report.html'}" and (run / "report.html").stat().st_size > 10_000
    same_as_reference(run, reference)
    code, _, err = finished(cnnlab("train", "--resume", run))  # now complete: finished, as before
    assert code == 2 and "has finished its 3 epochs" in err


def wait_for(path: Path, process, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while not path.exists():
        assert time.time() < deadline and process.poll() is None, "the run never got there"
        time.sleep(0.05)


def test_sigkill_at_random_instants_loses_nothing(tmp_path, reference):
    rng = random.Random(20261201)  # seeded: CI repeats the same instants
    run = tmp_path / "run"
    process = cnnlab("train", "lenet5", *FLAGS, "--out", run)
    wait_for(run / "checkpoints" / "last", process)  # before it, there is nothing to resume yet
    time.sleep(rng.uniform(0.0, 1.0))
    process.kill()
    process.wait()
    resume_until_done(run, rng, kills=2)
    same_as_reference(run, reference)


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_and_sigint_checkpoint_the_step_and_print_the_resume_command(tmp_path, reference, sig, code):
    run = tmp_path / "run"
    step = 31  # mid-epoch 2, between the step-30 and step-35 checkpoints
    process = cnnlab("train", "lenet5", *FLAGS, "--out", run, "--checkpoint-minutes", "0", stage=sig.name, k=step)
    returncode, _, err = finished(process)
    assert returncode == code, err
    line = err.strip().splitlines()[-1]
    match = re.fullmatch(r"cnnlab: stopped by (\w+): checkpoint (\S+); resume with: (cnnlab train --resume \S+)", line)
    assert match and match[1] == sig.name, line
    state = torch.load(Path(match[2]) / "state.pt", weights_only=True)
    assert (state["epoch"], state["step"], state["position"]["batch"]) == (1, step, step - 23)
    command = match[3].split()
    assert finished(cnnlab(*command[1:], "--quiet"))[0] == 0
    same_as_reference(run, reference)


def test_a_second_writer_is_refused_naming_the_first_and_a_dead_ones_lock_is_taken_over(tmp_path):
    run = tmp_path / "run"
    first = cnnlab("train", "lenet5", *FLAGS, "--epochs", "50", "--out", run)
    wait_for(run / "checkpoints" / "last", first)
    code, _, err = finished(cnnlab("train", "--resume", run, "--epochs", "51"))
    assert code == 2 and len(err.splitlines()) == 1, err
    assert f"is being written by process {first.pid}" in err
    first.kill()
    first.wait()
    step = torch.load(run / "checkpoints" / "last" / "state.pt", weights_only=True)["step"]
    code, _, err = finished(cnnlab("train", "--resume", run, "--max-steps", step + 3, "--quiet"))
    assert code == 0, err
    assert f"taking over the lock of process {first.pid}, which is no longer running" in err
    assert (run / ".lock").read_text() == ""  # released at the end


def test_a_full_disk_is_one_line_and_leaves_no_temporary_file(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(disk)],
                                           capture_output=True).returncode != 0:
        pytest.skip("needs root to mount a small tmpfs")
    try:
        code, _, err = finished(cnnlab("train", "lenet5", *FLAGS, "--out", disk / "run"))
        assert code == 2 and len(err.splitlines()) == 1, err
        assert "no space left on the device" in err
        assert not [p for p in disk.rglob("*") if ".tmp" in p.name]
    finally:
        subprocess.run(["umount", str(disk)], check=True)
