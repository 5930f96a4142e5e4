"""The lecture formulas for one spatial axis: output size, misfits, receptive-field arithmetic.

Pure integer/fraction arithmetic with no torch, so `cnnlab calc` and the tracer share one
definition of every number they print.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from math import ceil


@dataclass(frozen=True)
class Window:
    """A sliding window along one axis: convolution or pooling."""

    kernel: int
    stride: int = 1
    padding: int = 0  # per side; asymmetric 'same' padding keeps its left part here
    dilation: int = 1
    ceil_mode: bool = False
    padding_right: int | None = None  # only when it differs from `padding`

    @property
    def span(self) -> int:
        """Input positions one window covers: d·(F − 1) + 1."""
        return self.dilation * (self.kernel - 1) + 1

    def padded(self, size: int) -> int:
        right = self.padding if self.padding_right is None else self.padding_right
        return size + self.padding + right

    def exact_output(self, size: int) -> Fraction:
        """(W − F + 2P)/S + 1 as an exact fraction."""
        return Fraction(self.padded(size) - self.span, self.stride) + 1

    def output(self, size: int) -> int:
        """The size PyTorch produces: floor (or ceil, with the rule that no window starts in the padding).
        Integer arithmetic: this runs for every window of every traced call."""
        room = self.padded(size) - self.span
        if not self.ceil_mode:
            return room // self.stride + 1
        out = -(-room // self.stride) + 1
        if (out - 1) * self.stride >= size + self.padding:  # PyTorch drops a last window starting in padding
            out -= 1
        return out


@dataclass(frozen=True)
class Misfit:
    """A window that does not tile its padded input: the flag the analyzer puts on a row."""

    window: Window
    size: int  # input size W along the axis
    exact: Fraction  # (W − F + 2P)/S + 1
    output: int  # what PyTorch makes of it
    discarded: int  # padded-input positions never covered (floor mode)
    discarded_pixels: int  # of those, real input pixels (not padding)

    def __str__(self) -> str:
        w = self.window
        padding = f"2·{w.padding}" if w.padding_right is None else f"{w.padding}+{w.padding_right}"
        text = f"({self.size} − {w.span} + {padding})/{w.stride} + 1 = {_decimal(self.exact)} → {self.output}"
        if w.ceil_mode:
            return f"{text} (ceil mode: the last window hangs over the edge)"
        lost = f"{self.discarded_pixels} input pixel(s) lost" if self.discarded_pixels else "only padding lost"
        return f"{text}: floor skips the last {self.discarded} position(s), {lost}"


def _decimal(value: Fraction) -> str:
    return f"{float(value):.4f}".rstrip("0").rstrip(".")


def misfit(window: Window, size: int) -> Misfit | None:
    """None when (W − F + 2P)/S + 1 is an integer, else what the rounding costs."""
    if (window.padded(size) - window.span) % window.stride == 0:
        return None
    exact = window.exact_output(size)
    output = window.output(size)
    covered = (output - 1) * window.stride + window.span
    discarded = max(window.padded(size) - covered, 0)
    right = window.padding if window.padding_right is None else window.padding_right
    return Misfit(
        window=window,
        size=size,
        exact=exact,
        output=output,
        discarded=discarded,
        discarded_pixels=max(discarded - right, 0),
    )


@dataclass(frozen=True)
class Axis:
    """Receptive field of one unit along one axis, in input pixels.

    `size` is how many input pixels one unit sees, `jump` the distance in input pixels between
    neighbouring units (None once the axis is collapsed by flatten or global pooling), `start`
    the centre of the first unit's field (pixel 0 is the centre of the first input pixel;
    negative values reach into the padding). `padding` is the effective padding of Araujo et al.
    (Distill 2019) and of google-research's `receptive_field`: the first unit's field begins
    `padding` pixels before pixel 0, so unit u sees pixels u·jump − padding … u·jump − padding + size − 1.
    """

    size: int | Fraction = 1
    jump: int | Fraction | None = 1
    start: int | Fraction = 0  # whole numbers stay ints (fast); fractions where a window's span is even

    @property
    def padding(self):
        """Effective padding: (size − 1)/2 − start, a whole number unless a window had an even span."""
        return _whole(Fraction(self.size - 1, 2) - self.start)

    def box(self, unit: int) -> tuple:
        """(first, last) input pixel that output unit `unit` sees along this axis (may reach into
        the padding: below 0 or past the input's last pixel)."""
        first = _whole(unit * (self.jump or 0) - self.padding)
        return first, _whole(first + self.size - 1)

    def through(self, window: Window) -> Axis:
        """r' = r + (F_eff − 1)·j, j' = j·S, start' = start + ((F_eff − 1)/2 − P)·j."""
        jump = self.jump
        if jump is None:  # e.g. a 1×1 convolution after global pooling: it sees what its input saw
            return self
        return Axis(
            size=_whole(self.size + (window.span - 1) * jump),
            jump=_whole(jump * window.stride),
            start=_whole(self.start + (_half(window.span - 1) - window.padding) * jump),
        )

    def adaptive(self, size: int, output: int) -> Axis:
        """Adaptive pooling from `size` to `output` units: windows of PyTorch's uneven widths."""
        if output == 1 or self.jump is None:
            return self.collapsed(size)
        if size % output == 0:
            return self.through(Window(size // output, size // output))
        widest_window = max(ceil((a + 1) * size / output) - (a * size) // output for a in range(output))
        return Axis(
            size=_whole(self.size + (widest_window - 1) * self.jump),
            jump=_whole(self.jump * Fraction(size, output)),
            start=_whole(self.start + Fraction(widest_window - 1, 2) * self.jump),
        )

    def collapsed(self, length: int) -> Axis:
        """After flatten or global pooling over `length` units: one unit sees them all."""
        if self.jump is None:
            return self
        extent = (length - 1) * self.jump
        return Axis(size=_whole(self.size + extent), jump=None, start=_whole(self.start + Fraction(extent, 2)))


def _whole(value):
    """Keep integers integers: fields are whole pixels except after uneven adaptive pooling."""
    if isinstance(value, int):
        return value
    value = Fraction(value)
    return int(value) if value.denominator == 1 else value


def _half(value: int):
    return value // 2 if value % 2 == 0 else Fraction(value, 2)


def merge(axes: list[tuple[Axis, ...]]) -> tuple[tuple[Axis, ...], tuple[Fraction, ...]]:
    """Where branches meet (add, concatenate, multiply): per axis, the field that covers every
    branch's field, and how far apart the branches' centres are (0 when they are aligned).

    Aligned branches give the largest field (the main path of a residual block, the 5×5 branch of
    an Inception module). A branch collapsed by global pooling (a squeeze-and-excitation gate)
    sees the whole input: then every unit does, and the offset is not defined (0)."""
    merged, offsets = [], []
    for column in zip(*axes):
        spatial = [axis for axis in column if axis.jump is not None]
        if len(spatial) < len(column):
            merged.append(max((axis for axis in column if axis.jump is None), key=lambda axis: axis.size))
            offsets.append(Fraction(0))
            continue
        left = min(a.start - _half(a.size - 1) for a in column)
        right = max(a.start + _half(a.size - 1) for a in column)
        jump = max(a.jump for a in column)
        merged.append(Axis(size=_whole(right - left + 1), jump=jump, start=_whole(Fraction(left + right) / 2)))
        offsets.append(max(a.start for a in column) - min(a.start for a in column))
    return tuple(merged), tuple(offsets)


def stack(kernel: int, layers: int, stride: int = 1) -> Axis:
    """Receptive field of `layers` identical stacked windows (the VGG argument)."""
    axis = Axis()
    for _ in range(layers):
        axis = axis.through(Window(kernel, stride))
    return axis
