"""When to stop and when to checkpoint, decided the same way on every process.

SIGTERM (schedulers, `timeout`, preemption) and SIGINT (Ctrl-C) do not kill a run: `StopSignals`
records them and the loop finishes its current step, writes a checkpoint at that step and returns
(exit codes 143 and 130). A second signal while stopping ends the process at once.

`Control.poll()` runs after every step. Alone, it reads the flags directly. Under torchrun the
flags (a stop signal seen by any process, a checkpoint due by any clock) are reduced over the
processes through a gloo group on the CPU, asynchronously: step t's flags are read at step t + 1,
so the GPU stream never waits, and every process acts at the same step because all read the
same reduced value (the maximum: SIGTERM outranks SIGINT).
"""

from __future__ import annotations

import os
import signal
import threading
import time

import torch
import torch.distributed as dist

SIGNALS = {signal.SIGTERM: ("SIGTERM", 143), signal.SIGINT: ("SIGINT", 130)}


class StopSignals:
    """Within the block, SIGTERM/SIGINT set `received` (the signal number) instead of killing."""

    def __init__(self):
        self.received = 0
        self._previous = {}

    def _handle(self, signum, frame):
        if self.received:  # asked twice: stop now
            signal.signal(signum, self._previous.get(signum, signal.SIG_DFL))
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            os.kill(os.getpid(), signum)
            return
        self.received = signum

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


class Control:
    """Per-step decisions: (signal number to stop on or 0, checkpoint now?)."""

    def __init__(self, signals: StopSignals, every_steps: int | None, minutes: float | None, world_size: int = 1):
        self.signals = signals
        self.every_steps, self.seconds = every_steps, minutes * 60 if minutes else None  # 0 or None: off
        self.last_checkpoint = time.perf_counter()
        self.group = dist.new_group(backend="gloo") if world_size > 1 else None
        self.pending = None  # (flags tensor, async work) posted at the previous step

    def _flags(self, step: int) -> torch.Tensor:
        due = (self.every_steps is not None and step % self.every_steps == 0) or (
            self.seconds is not None and time.perf_counter() - self.last_checkpoint >= self.seconds)
        return torch.tensor([self.signals.received, int(due)], dtype=torch.int64)

    def poll(self, step: int) -> tuple[int, bool]:
        """After optimizer step `step` (counted from 1)."""
        flags = self._flags(step)
        if self.group is None:
            return int(flags[0]), bool(flags[1])
        posted, self.pending = self.pending, (flags, dist.all_reduce(flags, op=dist.ReduceOp.MAX, group=self.group,
                                                                 async_op=True))
        if posted is None:
            return 0, False
        posted[1].wait()
        return int(posted[0][0]), bool(posted[0][1])

    def settle(self) -> int:
        """At an epoch's end: every process agrees now whether a stop was asked (returns the signal)."""
        if self.group is None:
            return self.signals.received
        if self.pending is not None:
            self.pending[1].wait()
            self.pending = None
        flags = torch.tensor([self.signals.received], dtype=torch.int64)
        dist.all_reduce(flags, op=dist.ReduceOp.MAX, group=self.group)
        return int(flags.item())

    def checkpointed(self) -> None:
        self.last_checkpoint = time.perf_counter()
