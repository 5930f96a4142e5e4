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
postfix; when stderr is not a terminal it prints a plain progress line every 30 s instead; with
`quiet=True` it prints nothing. `epoch_line` returns the one-line epoch summary
(`epoch 3/10  train loss 0.4100 acc 87.00%  val loss ... acc ...  lr 0.1  5,120 img/s  12.3s`);
any of `val`, `test`, `lr`, `images_per_s` may be None and is then left out. `print_line` prints
through tqdm so a line never tears an open bar, and is silent when quiet.
"""

from __future__ import annotations

import sys
import time

from tqdm.auto import tqdm


class EpochBar:
    """A progress bar for one epoch: steps done, time left, and the latest loss/accuracy/speed.

    At a terminal it is a tqdm bar. Elsewhere (a log file, nohup, CI) a bar's redraws are noise,
    so it prints one plain line every `PLAIN_EVERY` seconds instead: step, epoch, images/s, ETA."""

    PLAIN_EVERY = 30.0  # seconds between plain progress lines when stderr is not a terminal

    def __init__(self, epoch: int, epochs: int, total_steps: int, quiet: bool = False, desc: str | None = None,
                 done: int = 0):
        """`done`: steps of this epoch already taken (an epoch resumed in its middle)."""
        self._bar = None
        self.epoch, self.epochs, self.total, self.done, self._first = epoch, epochs, total_steps, done, done
        self._plain = not quiet and not sys.stderr.isatty()
        self._started = self._printed = time.monotonic()
        self._images_per_s: float | None = None
        if not quiet and not self._plain:
            self._bar = tqdm(
                total=total_steps,
                initial=done,
                desc=desc or f"epoch {epoch}/{epochs}",
                unit="step",
                leave=False,
                dynamic_ncols=True,
                file=sys.stderr,
            )

    def advance(self, steps: int = 1) -> None:
        self.done += steps
        if self._bar is not None:
            self._bar.update(steps)
        elif self._plain and time.monotonic() - self._printed >= self.PLAIN_EVERY:
            self._printed = time.monotonic()
            print_line(self.plain_line())

    def plain_line(self) -> str:
        """`epoch 3/10  step 120/391  5,120 img/s  ETA 1m 23s` (the ETA of this epoch)."""
        elapsed = max(time.monotonic() - self._started, 1e-9)
        left = (self.total - self.done) * elapsed / max(self.done - self._first, 1)
        speed = f"  {self._images_per_s:,.0f} img/s" if self._images_per_s else ""
        return f"epoch {self.epoch}/{self.epochs}  step {self.done:,}/{self.total:,}{speed}  ETA {_duration(left)}"

    def show(self, *, loss: float | None = None, top1: float | None = None, images_per_s: float | None = None) -> None:
        self._images_per_s = images_per_s or self._images_per_s
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


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds + 0.5), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


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


def header_line(*, model: str, parameters: int, data: dict, recipe: str | None, device: str, precision: str,
                threads: int, run: str, resumed: str | None = None) -> str:
    """What a run is, in one line, before its first step: model, data and how its images are fitted
    to the model (grey, resized, padded), recipe, where and how it computes, and the run folder."""
    sizes = f"{data.get('train_size', 0):,} train, {data.get('val_size', 0):,} val, {data.get('test_size', 0):,} test"
    native = data.get("native_shape")
    shape = "x".join(map(str, data.get("input_shape", [])))
    fitted = "; ".join(data.get("adapt") or []) or "as stored"
    images = f"{'x'.join(map(str, native))} -> {shape}: {fitted}" if native else f"{shape}: {fitted}"
    start = f"resuming {run} at {resumed}" if resumed else f"run {run}"
    return (f"{model} ({parameters:,} parameters) | {data.get('dataset')}: {sizes}; images {images} | "
            f"recipe {recipe or 'none'} | {device}, {precision}, {threads} thread{'s' if threads > 1 else ''} | {start}")


def print_line(text: str, quiet: bool = False) -> None:
    """Print a line without breaking an open progress bar; nothing when quiet."""
    if not quiet:
        tqdm.write(text, file=sys.stdout)
