"""`cnnlab calc`: the lecture formulas for one layer or a stack, as students check homework."""

from __future__ import annotations

from cnnlab.analysis.geometry import Window, misfit, stack
from cnnlab.errors import CnnlabError


def _positive(**values) -> None:
    for name, value in values.items():
        if value is not None and value < 1:
            raise CnnlabError(f"--{name} must be at least 1, not {value}")


def _window_lines(window: Window, size: int, what: str) -> list[str]:
    exact = window.exact_output(size)
    lines = [
        f"output size = (W − F + 2P)/S + 1 = ({size} − {window.span} + 2·{window.padding})/{window.stride} + 1"
        f" = {float(exact):g}" + (f" → {window.output(size)}" if exact.denominator != 1 else "")
    ]
    if window.output(size) < 1:
        raise CnnlabError(f"the {what} does not fit: a {size}-pixel input gives an empty output; "
                          f"use an input of at least {window.span - 2 * window.padding} pixels or more padding")
    problem = misfit(window, size)
    if problem is not None:
        lines.append(f"warning: not an integer: {problem}")
        lines.append("(PyTorch rounds down unless ceil_mode=True; the lecture formula assumes it divides)")
    return lines


def conv(size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1,
         channels: int | None = None, filters: int | None = None, groups: int = 1) -> str:
    """Output size; with channels and filters also parameters and MACs."""
    _positive(size=size, kernel=kernel, stride=stride, dilation=dilation, channels=channels, filters=filters,
              groups=groups)
    window = Window(kernel, stride, padding, dilation)
    lines = _window_lines(window, size, "convolution")
    out = window.output(size)
    if channels is not None and filters is not None:
        if channels % groups or filters % groups:
            raise CnnlabError(f"--groups {groups} must divide both --channels {channels} and --filters {filters}")
        weights = kernel * kernel * (channels // groups) * filters
        lines.append(f"output volume = {filters}×{out}×{out} = {filters * out * out:,} values")
        lines.append(f"parameters = F·F·(C/G)·K + K = {kernel}·{kernel}·{channels // groups}·{filters} + {filters}"
                     f" = {weights + filters:,} ({weights:,} weights + {filters} biases)")
        lines.append(f"MACs = out·out·K·F·F·(C/G) = {out}·{out}·{filters}·{kernel}·{kernel}·{channels // groups}"
                     f" = {out * out * weights:,} (FLOPs = 2 × MACs = {2 * out * out * weights:,})")
    return "\n".join(lines) + "\n"


def pool(size: int, kernel: int, stride: int | None = None, padding: int = 0, ceil_mode: bool = False) -> str:
    _positive(size=size, kernel=kernel, stride=stride)
    window = Window(kernel, stride or kernel, padding, ceil_mode=ceil_mode)
    lines = _window_lines(window, size, "pooling window")
    lines.append("parameters = 0")
    return "\n".join(lines) + "\n"


def stack_text(kernel: int, layers: int, channels: int | None = None, stride: int = 1) -> str:
    """Receptive field of a stack and its parameters against one layer with the same field."""
    _positive(kernel=kernel, layers=layers, channels=channels, stride=stride)
    axis = stack(kernel, layers, stride)
    field = axis.size
    lines = [
        f"receptive field of {layers} stacked {kernel}×{kernel} layers (stride {stride}): {field}×{field}"
        f" (jump {axis.jump})",
    ]
    per_layer = kernel * kernel
    if channels is None:
        lines.append(f"parameters (C channels in and out, no biases): {layers}·{per_layer}C² = {layers * per_layer}C²"
                     f" vs {field * field}C² for one {field}×{field} layer")
    else:
        c2 = channels * channels
        lines.append(f"parameters (C = {channels}, no biases): {layers}·{per_layer}·{channels}² = {layers * per_layer * c2:,}"
                     f" vs {field * field}·{channels}² = {field * field * c2:,} for one {field}×{field} layer")
    if stride == 1:
        lines.append(f"and {layers} non-linearities instead of 1")
    return "\n".join(lines) + "\n"
