"""What a training run prints: a bar per epoch and one summary line per epoch. Torch-free.

Shared by the PyTorch trainer (`cnnlab train`) and the NumPy engine (`cnnlab scratch train`), so
both look the same to a user. It only formats numbers it is given; it never computes them.

API:

    bar = EpochBar(epoch=3, epochs=10, total_steps=len(loader), quiet=False)
    for ...:
        ...                                   # one training step
        bar.advance(steps=1)                  # cheap: no formatting, no numbers needed
        if step % interval == 0:
            bar.show(loss=0.41, top1=0.87, images_per_s=5120.0)   # numbers read once per interval
    bar.close()
    print_line(epoch_line(epoch=3, epochs=10, train={"loss": .., "top1": ..},
                          val={"loss": .., "top1": ..}, lr=0.1, seconds=12.3, images_per_s=5120.0),
               quiet=False)

`EpochBar` is a tqdm bar (steps, elapsed, time left) with loss, top-1 accuracy and images/s in its
postfix; with `quiet=True`, or when stderr is not a terminal, it prints nothing. `epoch_line` returns the one-line epoch summary
(`epoch 3/10  train loss 0.4100 acc 87.00%  val loss ... acc ...  lr 0.1  5,120 img/s  12.3s`);
any of `val`, `test`, `lr`, `images_per_s` may be None and is then left out. `print_line` prints
through tqdm so a line never tears an open bar, and is silent when quiet.
"""

from __future__ import annotations

import sys

from tqdm.auto import tqdm


class EpochBar:
    """A progress bar for one epoch: steps done, time left, and the latest loss/accuracy/speed."""

    def __init__(self, epoch: int, epochs: int, total_steps: int, quiet: bool = False, desc: str | None = None):
        self._bar = None
        # A bar is for a person at a terminal; in a log file its redraws are noise, the epoch lines suffice.
        if not quiet and sys.stderr.isatty():
            self._bar = tqdm(
                total=total_steps,
                desc=desc or f"epoch {epoch}/{epochs}",
                unit="step",
                leave=False,
                dynamic_ncols=True,
                file=sys.stderr,
            )

    def advance(self, steps: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(steps)

    def show(self, *, loss: float | None = None, top1: float | None = None, images_per_s: float | None = None) -> None:
        if self._bar is None:
            return
        postfix = {}
        if loss is not None:
            postfix["loss"] = f"{loss:.4f}"
        if top1 is not None:
            postfix["acc"] = f"{100 * top1:.2f}%"
        if images_per_s is not None:
            postfix["img/s"] = f"{images_per_s:,.0f}"
        self._bar.set_postfix(postfix, refresh=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _split(name: str, metrics: dict | None) -> str:
    if not metrics:
        return ""
    text = f"  {name} loss {metrics['loss']:.4f}"
    if metrics.get("top1") is not None:
        text += f" acc {100 * metrics['top1']:.2f}%"
    return text


def epoch_line(
    *,
    epoch: int,
    epochs: int,
    train: dict,
    val: dict | None = None,
    test: dict | None = None,
    lr: float | None = None,
    seconds: float | None = None,
    images_per_s: float | None = None,
) -> str:
    """The one-line summary of an epoch; `train`/`val`/`test` hold "loss" and optionally "top1"."""
    text = f"epoch {epoch}/{epochs}" + _split("train", train) + _split("val", val) + _split("test", test)
    if lr is not None:
        text += f"  lr {lr:.4g}"
    if images_per_s is not None:
        text += f"  {images_per_s:,.0f} img/s"
    if seconds is not None:
        text += f"  {seconds:.1f}s"
    return text


def print_line(text: str, quiet: bool = False) -> None:
    """Print a line without breaking an open progress bar; nothing when quiet."""
    if not quiet:
        tqdm.write(text, file=sys.stdout)
