"""`cnnlab summary MODEL --unit LAYER:Y,X`: the exact input box one output unit sees.

From the layer's receptive field (size, jump, effective padding per axis, geometry.Axis): unit u
sees input pixels u·jump − padding … u·jump − padding + size − 1, part of which may be padding.
"""

from __future__ import annotations

import difflib

from cnnlab.analysis.formatters import number, wrap
from cnnlab.analysis.i18n import ANSWERS, words
from cnnlab.analysis.shapes import layout_text, shape_text
from cnnlab.errors import CnnlabError


def parse_unit(text: str) -> tuple[str, tuple[int, ...]]:
    """'features.30:3,4' → ('features.30', (3, 4)); 'classifier.fc8' → ('classifier.fc8', ())."""
    layer, sep, coordinates = str(text).rpartition(":")
    if not sep:
        return text, ()
    try:
        unit = tuple(int(c) for c in coordinates.split(","))
    except ValueError:
        raise CnnlabError(f"bad --unit '{text}': write LAYER:Y,X with whole numbers, e.g. features.30:3,3") from None
    return layer, unit


def _row(summary, layer: str):
    rows = {row.name: row for row in summary.rows}
    if layer in rows:
        return rows[layer]
    close = difflib.get_close_matches(layer, list(rows), n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}?" if close else "the table's first column lists them"
    raise CnnlabError(f"no layer '{layer}' in {summary.model}'s table: {hint}")


def unit_box(summary, text: str) -> tuple[object, tuple[int, ...], list[tuple]]:
    """(row, unit, [(first, last) input pixel per spatial axis]) for `text` = 'LAYER:Y,X'."""
    layer, unit = parse_unit(text)
    row = _row(summary, layer)
    axes = row.receptive_field
    if not axes:
        raise CnnlabError(f"{layer} has no receptive field in the input image (it does not depend on it)")
    collapsed = all(axis.jump is None for axis in axes)
    sizes = tuple(row.output_shape[-len(axes):]) if not collapsed else ()
    if collapsed:
        unit = unit or (0,)
        if len(unit) != 1 or not 0 <= unit[0] < row.output_shape[0]:
            raise CnnlabError(f"{layer} has {row.output_shape[0]} units, each seeing the whole field: "
                              f"give --unit {layer}:K with 0 <= K < {row.output_shape[0]}")
        return row, unit, [axis.box(0) for axis in axes]
    if len(unit) != len(axes) or not all(0 <= u < s for u, s in zip(unit, sizes)):
        ranges = ",".join(f"0…{s - 1}" for s in sizes)
        raise CnnlabError(f"{layer}'s output is {shape_text(row.output_shape)}: give --unit {layer}:"
                          f"{','.join('YX'[-len(axes):] if len(axes) <= 2 else 'DYX')} with coordinates in {ranges}")
    return row, unit, [axis.box(u) for axis, u in zip(axes, unit)]


def unit_text(summary, text: str, lang: str = "en", layout: str = "chw") -> str:
    row, unit, boxes = unit_box(summary, text)
    words_ = words(ANSWERS, lang)
    image = summary.input_shape[-len(boxes):]
    names = [words_["rows"], words_["cols"]] if len(boxes) == 2 else [f"axis {i}" for i in range(len(boxes))]

    def spans(ranges) -> str:
        return ", ".join(f"{name} {number(first)}…{number(last)}" for name, (first, last) in zip(names, ranges))

    inside = [(max(first, 0), min(last, size - 1)) for (first, last), size in zip(boxes, image)]
    total = inside_count = 1
    for (first, last), (a, b) in zip(boxes, inside):
        total *= last - first + 1
        inside_count *= max(b - a + 1, 0)
    where = f"({', '.join(map(str, unit))})" if len(unit) > 1 else str(unit[0])
    lines = [words_["unit"].format(layer=row.name, unit=where, shape=shape_text(row.output_shape, layout),
                                   box=spans(boxes), size="×".join(map(str, image)), layout=layout_text(layout))]
    if inside != boxes:
        lines.append(words_["unit_inside"].format(box=spans(inside)))
        lines.append(words_["unit_padding"].format(count=number(total - inside_count), total=number(total)))
    return "\n".join(wrapped for line in lines for wrapped in wrap(line)) + "\n"
