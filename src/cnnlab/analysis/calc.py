"""`cnnlab calc`: the lecture formulas for one layer or a stack, as students check homework.

Pure arithmetic (geometry.py): no torch is imported, so it answers at once.
"""

from __future__ import annotations

from cnnlab.analysis.geometry import Window, misfit, stack
from cnnlab.analysis.i18n import CALC, words
from cnnlab.errors import CnnlabError


def _positive(**values) -> None:
    for name, value in values.items():
        if value is not None and value < 1:
            raise CnnlabError(f"--{name} must be at least 1, not {value}")


def _window_lines(window: Window, size: int, what: str, text: dict[str, str]) -> list[str]:
    exact = window.exact_output(size)
    formula = f"({size} − {window.span} + 2·{window.padding})/{window.stride} + 1"
    value = f"{float(exact):g}" + (f" → {window.output(size)}" if exact.denominator != 1 else "")
    lines = [text["output"].format(formula=formula, value=value)]
    if window.output(size) < 1:
        raise CnnlabError(text["empty"].format(what=text[what], size=size, smallest=window.span - 2 * window.padding))
    problem = misfit(window, size)
    if problem is not None:
        lines.append(text["misfit"].format(misfit=problem))
        lines.append(text["rounding"])
    return lines


def conv(size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1,
         channels: int | None = None, filters: int | None = None, groups: int = 1, lang: str = "en") -> str:
    """Output size; with channels and filters also parameters and MACs."""
    text = words(CALC, lang)
    _positive(size=size, kernel=kernel, stride=stride, dilation=dilation, channels=channels, filters=filters,
              groups=groups)
    window = Window(kernel, stride, padding, dilation)
    lines = _window_lines(window, size, "convolution", text)
    out = window.output(size)
    if channels is not None and filters is not None:
        if channels % groups or filters % groups:
            raise CnnlabError(f"--groups {groups} must divide both --channels {channels} and --filters {filters}")
        per_group = channels // groups
        weights = kernel * kernel * per_group * filters
        lines.append(text["volume"].format(filters=filters, out=out, values=f"{filters * out * out:,}"))
        lines.append(text["params"].format(formula=f"{kernel}·{kernel}·{per_group}·{filters} + {filters}",
                                           total=f"{weights + filters:,}", weights=f"{weights:,}", biases=filters))
        lines.append(text["macs"].format(formula=f"{out}·{out}·{filters}·{kernel}·{kernel}·{per_group}",
                                         macs=f"{out * out * weights:,}", flops=f"{2 * out * out * weights:,}"))
    return "\n".join(lines) + "\n"


def pool(size: int, kernel: int, stride: int | None = None, padding: int = 0, ceil_mode: bool = False,
         lang: str = "en") -> str:
    text = words(CALC, lang)
    _positive(size=size, kernel=kernel, stride=stride)
    window = Window(kernel, stride or kernel, padding, ceil_mode=ceil_mode)
    lines = _window_lines(window, size, "pooling", text)
    lines.append(text["pool_params"])
    return "\n".join(lines) + "\n"


def stack_text(kernel: int, layers: int, channels: int | None = None, stride: int = 1, lang: str = "en") -> str:
    """Receptive field of a stack and its parameters against one layer with the same field."""
    text = words(CALC, lang)
    _positive(kernel=kernel, layers=layers, channels=channels, stride=stride)
    axis = stack(kernel, layers, stride)
    field = axis.size
    lines = [text["field"].format(layers=layers, kernel=kernel, stride=stride, field=field, jump=axis.jump)]
    per_layer = kernel * kernel
    if channels is None:
        lines.append(text["stack_units"].format(layers=layers, per_layer=per_layer, stacked=layers * per_layer,
                                                single=field * field, field=field))
    else:
        c2 = channels * channels
        lines.append(text["stack_count"].format(layers=layers, per_layer=per_layer, channels=channels,
                                                stacked=f"{layers * per_layer * c2:,}", field=field,
                                                single=f"{field * field * c2:,}"))
    if stride == 1:
        lines.append(text["nonlinear"].format(layers=layers))
    return "\n".join(lines) + "\n"
