"""Turn a `Summary` into text: an aligned terminal table, Markdown, CSV, JSON or HTML.

The terminal table is for reading at a glance: the column groups people ask for most, 120
characters wide for every zoo model, with long notes as numbered footnotes below it (`columns`
chooses other groups, `wide=True` shows everything). Markdown and HTML are for documents and
notebooks (every column, notes inline); CSV and JSON are for programs (exact integers, bytes,
English JSON keys whatever `lang` says). Memory is in binary units, labelled as such (KiB = 1024 B).
"""

from __future__ import annotations

import csv
import html
import io
import json
import unicodedata
from fractions import Fraction

from cnnlab.analysis.geometry import Axis
from cnnlab.analysis.i18n import labels
from cnnlab.analysis.shapes import check_layout, layout_text, shape_text
from cnnlab.errors import CnnlabError

FORMATS = ("table", "md", "csv", "json", "html")
TABLE_WIDTH = 120  # terminal columns of the default table

ALL_COLUMNS = ("name", "type", "window", "kernel", "stride", "padding", "groups", "dilation", "units", "input", "output",
               "params", "frozen", "memory", "macs", "other", "rf", "jump", "pad", "start", "notes")
GROUPS = {
    "window": ("kernel", "stride", "padding", "groups", "dilation", "units"),
    "shape": ("input", "output"),
    "cost": ("params", "frozen", "memory", "macs", "other"),
    "rf": ("rf", "jump", "pad"),
    # the columns of the lecture notes' AlexNet table, in its order
    "lecture": ("input", "units", "kernel", "stride", "padding", "output", "memory", "params"),
}
# The compact default: kernel, stride and padding in one column as the papers write them ("7×7/2 p3"), and
# no units column (a layer's filters are its output's channels).
DEFAULT_COLUMNS = ("window", "groups", "dilation", "output", "params", "frozen", "memory", "macs", "rf", "notes")
_NUMERIC = {"params", "frozen", "memory", "macs", "other", "rf", "jump", "pad", "start", "units"}


def columns_from(text: str | None) -> tuple[str, ...] | None:
    """'window,cost' or 'output,params,rf' → the columns to show (groups expand); None = the default."""
    if text is None:
        return None
    chosen: list[str] = []
    for word in (w.strip().lower() for w in text.split(",") if w.strip()):
        if word == "all":
            chosen += ALL_COLUMNS
        elif word in GROUPS:
            chosen += GROUPS[word]
        elif word in ALL_COLUMNS:
            chosen.append(word)
        else:
            raise CnnlabError(f"unknown column '{word}': choose groups ({', '.join(GROUPS)}, all) or columns "
                              f"({', '.join(ALL_COLUMNS[2:])})")
    return tuple(dict.fromkeys(chosen))


def render(summary, fmt: str = "table", lang: str = "en", *, columns=None, wide: bool = False,
           layout: str = "chw") -> str:
    """The summary as text in `fmt` ("table", "md", "csv", "json", "html") with headers in `lang`.

    `columns` (names or groups, see `columns_from`) picks the columns of the table, Markdown, CSV and
    HTML; `wide` shows every column with notes inline; `layout` "hwc" prints shapes as H×W×C."""
    _check(fmt)
    check_layout(layout)
    names, totals = labels(lang)
    if fmt == "json":
        return json.dumps(_as_json(summary), indent=2, ensure_ascii=False) + "\n"
    if isinstance(columns, str):
        columns = columns_from(columns)
    compact = fmt == "table" and not wide  # the terminal table: 120 columns, notes as footnotes
    if columns is None:
        columns = DEFAULT_COLUMNS if compact else ALL_COLUMNS
    keys = _visible_columns(summary.rows, ALL_COLUMNS if wide else ("name", "type", *columns))
    header = [names[k] + (f" ({layout_text(layout)})" if k in ("input", "output") and not compact else "")
              for k in keys]
    if fmt == "csv":
        return grid(header, [[_raw_cells(row, summary.batch, layout)[k] for k in keys] for row in summary.rows], "csv")
    notes = Footnotes(totals) if compact and "notes" in keys else None
    body = [[_cells(row, summary.batch, totals, layout, notes, compact)[k] for k in keys] for row in summary.rows]
    lines = _totals_lines(summary, totals, layout)
    numeric = {i for i, k in enumerate(keys) if k in _NUMERIC}
    if fmt == "html":
        return _html(lines, header, body, numeric)
    if compact and "name" in keys:
        _fit_names(header, body, keys.index("name"))
    table = grid(header, body, fmt, numeric)
    if fmt == "md":
        return "\n".join([f"### {lines[0]}", "", table, *(f"- {line}" for line in lines[1:])]) + "\n"
    if compact:
        lines = [wrapped for line in lines for wrapped in wrap(line)]
    return "\n".join([lines[0], "", table, *(notes.lines() if notes else []), *lines[1:]]) + "\n"


def _fit_names(header: list[str], body: list[list[str]], column: int, limit: int = TABLE_WIDTH) -> None:
    """Shorten the longest layer names (the middle of the path, marked …) until the terminal table
    fits `limit` columns: deep nets (DenseNet's features.denseblock4.denselayer16.conv2) are what
    would otherwise overflow; the start and the end of a name are what a reader matches."""
    widths = [max([width(h), *(width(str(cells[i])) for cells in body)]) for i, h in enumerate(header)]
    over = sum(widths) + 2 * (len(widths) - 1) - limit
    if over <= 0:
        return
    room = max(widths[column] - over, 16, width(header[column]))
    for cells in body:
        name = str(cells[column])
        if width(name) > room:
            tail = (room - 1) // 2
            cells[column] = name[: room - 1 - tail] + "…" + name[-tail:]


def _check(fmt: str) -> None:
    if fmt not in FORMATS:
        raise CnnlabError(f"unknown format '{fmt}': choose one of {', '.join(FORMATS)}")


class Footnotes:
    """Numbered notes under the terminal table; identical notes share one number."""

    def __init__(self, totals_labels: dict[str, str]):
        self.title = totals_labels["notes"]
        self.texts: dict[str, int] = {}

    def mark(self, texts: list[str]) -> str:
        numbers = [self.texts.setdefault(text, len(self.texts) + 1) for text in texts]
        return ",".join(str(n) for n in dict.fromkeys(numbers))

    def lines(self) -> list[str]:
        if not self.texts:
            return []
        return [f"{self.title}:", *(f"[{n}] {text}" for text, n in self.texts.items()), ""]


def grid(header: list[str], body: list[list], fmt: str, numeric: set[int] = frozenset()) -> str:
    """Rows as an aligned text table, a Markdown table, CSV or JSON (numeric columns right-aligned)."""
    _check(fmt)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerows([header, *body])
        return buffer.getvalue()
    if fmt == "json":
        return json.dumps([dict(zip(header, cells)) for cells in body], indent=2, ensure_ascii=False) + "\n"
    body = [[str(c) for c in cells] for cells in body]
    if fmt == "html":
        return _html_table(header, body, numeric)
    if fmt == "md":
        escape = lambda text: text.replace("|", "\\|")  # noqa: E731
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        return "\n".join(lines + ["| " + " | ".join(escape(c) for c in cells) + " |" for cells in body]) + "\n"
    widths = [max([width(h), *(width(cells[i]) for cells in body)]) for i, h in enumerate(header)]

    def line(cells):
        padded = [_pad(c, widths[i], right=i in numeric) for i, c in enumerate(cells)]
        return "  ".join(padded).rstrip()

    return "\n".join([line(header), "  ".join("-" * w for w in widths), *(line(c) for c in body)]) + "\n"


def width(text: str) -> int:
    """Display width: CJK characters take two columns in a terminal."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, size: int, right: bool) -> str:
    fill = " " * (size - width(text))
    return fill + text if right else text + fill


def _html_table(header: list[str], body: list[list[str]], numeric: set[int]) -> str:
    def cell(tag, i, text):
        align = ' style="text-align:right"' if i in numeric else ""
        return f"<{tag}{align}>{html.escape(text)}</{tag}>"

    head = "<tr>" + "".join(cell("th", i, h) for i, h in enumerate(header)) + "</tr>"
    rows = "".join("<tr>" + "".join(cell("td", i, c) for i, c in enumerate(cells)) + "</tr>" for cells in body)
    return f"<table><thead>{head}</thead><tbody>{rows}</tbody></table>"


def _html(lines: list[str], header: list[str], body: list[list[str]], numeric: set[int]) -> str:
    items = "".join(f"<li>{html.escape(line)}</li>" for line in lines[1:])
    return (f"<div><strong>{html.escape(lines[0])}</strong>{_html_table(header, body, numeric)}"
            f"<ul>{items}</ul></div>")


def wrap(text: str, limit: int = TABLE_WIDTH, indent: str = "    ") -> list[str]:
    """`text` broken at spaces into lines of at most `limit` display columns (CJK counts double)."""
    lines, line = [], ""
    for word in text.split(" "):
        candidate = f"{line} {word}" if line else word
        if line and width(candidate) > limit:
            lines.append(line)
            candidate = indent + word
        line = candidate
    return lines + [line]


def _visible_columns(rows, wanted) -> list[str]:
    hidden = set()
    if all(row.groups == 1 for row in rows):
        hidden.add("groups")
    if all(w.dilation == 1 for row in rows for w in row.windows):
        hidden.add("dilation")
    if all(row.params_frozen == 0 for row in rows):
        hidden.add("frozen")
    if "notes" in wanted and not any(row.flags for row in rows):
        hidden.add("notes")
    return [k for k in dict.fromkeys(wanted) if k not in hidden]


def _axes(values) -> str:
    values = list(values)
    if not values:
        return ""
    return str(values[0]) if len(set(values)) == 1 else "×".join(str(v) for v in values)


def number(value) -> str:
    """A whole number as it is, a fraction to two decimals."""
    if isinstance(value, Fraction) and value.denominator != 1:
        return f"{float(value):.2f}".rstrip("0").rstrip(".")
    return str(int(value))


def field_text(axes: tuple[Axis, ...], part: str) -> str:
    """One part of a receptive field ("size", "jump", "padding", "start"), one value or one per axis."""
    values = [getattr(a, part) for a in axes]
    if part == "jump" and any(v is None for v in values):
        return "—"
    return _axes(number(v) for v in values)


def human_bytes(count: float, digits: int | None = None) -> str:
    """Binary units, labelled as such: 1 KiB = 1024 B (the lecture tables' "KB" is this KiB).
    Two decimals, or `digits` significant digits (the compact table)."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(count) < 1024 or unit == "GiB":
            if digits is not None and count:
                decimals = max(digits - len(str(int(abs(count)))), 0)
                text = f"{count:.{decimals}f}"
            else:
                text = f"{count:.2f}"
            text = text.rstrip("0").rstrip(".") if "." in text else text
            return f"{text} {unit}"
        count /= 1024
    raise AssertionError


def human_count(count: int) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if count >= size:
            return f"{count / size:.3f}".rstrip("0").rstrip(".") + f" {unit}"
    return str(count)


def params_text(totals, text: dict[str, str] | None = None) -> str:
    """Parameters as the cards count them, with training-only heads shown apart:
    '6,998,552 (+ 6,379,728 in training-only heads, 13,378,280 in all)' (or just '61,706')."""
    text = text or labels("en")[1]
    if not totals.params_training_only:
        return f"{totals.params:,}"
    return text["params_aux"].format(inference=f"{totals.params_inference:,}", aux=f"{totals.params_training_only:,}",
                                     total=f"{totals.params:,}")


def inputs_text(row, layout: str = "chw") -> str:
    """All inputs of a merge: '(64+128+32+32)×28×28' for a concatenation along channels (runs of
    three or more equal inputs as '15·32'), 'A + B' otherwise; the one input of any other row."""
    shapes = row.input_shapes or (row.input_shape,)
    if len(shapes) == 1:
        return shape_text(shapes[0], layout)
    rest = {shape[1:] for shape in shapes}
    if row.type in ("cat", "concat", "concatenate") and len(rest) == 1 and len(shapes[0]) >= 2:
        channels = [shape[0] for shape in shapes]
        runs: list[list[int]] = []
        for c in channels:
            if runs and runs[-1][0] == c:
                runs[-1][1] += 1
            else:
                runs.append([c, 1])
        parts = [f"{n}·{c}" if n >= 3 else "+".join([str(c)] * n) for c, n in runs]
        spatial = "×".join(map(str, shapes[0][1:]))
        joined = "(" + "+".join(parts) + ")"
        return f"{spatial}×{joined}" if layout == "hwc" else f"{joined}×{spatial}"
    return " + ".join(shape_text(shape, layout) for shape in shapes)


def _raw_cells(row, batch: int, layout: str) -> dict[str, object]:
    kernel = "×".join(str(w.kernel) for w in row.windows)
    stride, padding = _axes(w.stride for w in row.windows), _axes(w.padding for w in row.windows)
    return {
        "name": row.name,
        "type": row.type,
        "window": f"{kernel}/{stride}" + (f" p{padding}" if padding != "0" else "") if row.windows else "",
        "kernel": kernel,
        "stride": stride,
        "padding": padding,
        "groups": row.groups if row.units is not None and row.windows else "",
        "dilation": _axes(w.dilation for w in row.windows),
        "units": "" if row.units is None else row.units,
        "input": inputs_text(row, layout),
        "output": shape_text(row.output_shape, layout),
        "params": row.params_trainable,
        "frozen": row.params_frozen,
        "memory": row.output_bytes * batch,
        "macs": row.macs,
        "other": row.other_ops,
        "rf": field_text(row.receptive_field, "size"),
        "jump": field_text(row.receptive_field, "jump"),
        "pad": field_text(row.receptive_field, "padding"),
        "start": field_text(row.receptive_field, "start"),
        "notes": "; ".join(row.flags),
    }


def _cells(row, batch: int, totals_labels: dict[str, str], layout: str, notes: Footnotes | None,
           compact: bool) -> dict[str, str]:
    cells = {k: str(v) for k, v in _raw_cells(row, batch, layout).items()}
    cells.update(
        params=f"{row.params_trainable:,}",
        frozen=f"{row.params_frozen:,}",
        memory=human_bytes(row.output_bytes * batch, digits=3 if compact else None),
        macs=f"{row.macs:,}",
        other=f"{row.other_ops:,}",
    )
    flags = [totals_labels["training_only"] if flag == "training only" else flag for flag in row.flags]
    cells["notes"] = notes.mark(flags) if notes is not None else "; ".join(flags)
    return cells


def _totals_lines(summary, text: dict[str, str], layout: str) -> list[str]:
    t, b = summary.totals, summary.batch
    memory = t.training_memory
    rf = t.receptive_field
    fields = ", ".join(field_text(rf, part) for part in ("size", "jump", "padding"))
    if t.receptive_field_nominal:
        fields += f" ({text['rf_nominal']})"
    return [
        text["title"].format(model=summary.model, shape=shape_text(summary.input_shape, layout),
                             layout=layout_text(layout), batch=b),
        f"{text['params']}: {params_text(t, text)} ("
        + text["params_detail"].format(trainable=f"{t.params_trainable:,}", frozen=f"{t.params_frozen:,}") + ")",
        f"{text['weights']}: {human_bytes(t.weights_bytes)}",
        f"{text['input']}: {human_bytes(t.input_bytes * b)}",
        f"{text['activations']}: {human_bytes(t.activation_bytes * b)} ({text['values'].format(count=f'{t.activation_bytes // 4:,}')})",
        f"{text['macs'].format(flops=human_count(t.flops))}: {t.macs:,} ({human_count(t.macs)})",
        f"{text['other']}: {t.other_ops:,}",
        f"{text['depth']}: {t.depth}",
        f"{text['rf']}: {fields}" if rf else f"{text['rf']}: —",
        f"{text['training'].format(precision=memory.precision, optimizer=memory.optimizer, batch=b)}: "
        f"{human_bytes(memory.total)}, "
        + text["training_detail"].format(weights=human_bytes(memory.weights), state=human_bytes(memory.optimizer_state),
                                         alive=human_bytes(memory.peak_activations),
                                         so_far=human_bytes(memory.peak_gradients),
                                         temporary=human_bytes(memory.peak_temporary),
                                         gradients=human_bytes(memory.gradients),
                                         activations=human_bytes(memory.activations)),
        *summary.notes,
    ]


def _jsonable(value):
    if isinstance(value, Fraction):
        return int(value) if value.denominator == 1 else float(value)
    if isinstance(value, Axis):
        return {"size": _jsonable(value.size), "jump": _jsonable(value.jump), "start": _jsonable(value.start),
                "padding": _jsonable(value.padding)}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _as_json(summary) -> dict:
    t = summary.totals
    rows = []
    for row in summary.rows:
        rows.append({
            "name": row.name, "type": row.type, "input_shape": list(row.input_shape),
            "input_shapes": [list(shape) for shape in row.input_shapes or (row.input_shape,)],
            "output_shape": list(row.output_shape),
            "kernel": [w.kernel for w in row.windows], "stride": [w.stride for w in row.windows],
            "padding": [w.padding for w in row.windows], "dilation": [w.dilation for w in row.windows],
            "groups": row.groups, "units": row.units,
            "params_trainable": row.params_trainable, "params_frozen": row.params_frozen,
            "output_bytes_fp32": row.output_bytes * summary.batch, "allocates": row.allocates,
            "implementation_copy": row.implementation_copy,
            "macs": row.macs, "other_ops": row.other_ops,
            "receptive_field": _jsonable(row.receptive_field), "misalignment": _jsonable(row.misalignment),
            "depth": row.depth, "training_only": row.training_only, "flags": row.flags,
        })
    memory = t.training_memory
    return {
        "model": summary.model, "input_shape": list(summary.input_shape), "batch": summary.batch,
        "notes": summary.notes, "rows": rows,
        "totals": {
            "params": t.params, "params_trainable": t.params_trainable, "params_frozen": t.params_frozen,
            "params_training_only": t.params_training_only, "params_inference": t.params_inference,
            "weights_bytes": t.weights_bytes,
            "input_bytes_fp32": t.input_bytes * summary.batch,
            "activation_bytes_fp32": t.activation_bytes * summary.batch,
            "macs": t.macs, "flops": t.flops, "other_ops": t.other_ops, "depth": t.depth,
            "receptive_field": _jsonable(t.receptive_field), "receptive_field_nominal": t.receptive_field_nominal,
            "training_memory": {
                "precision": memory.precision, "optimizer": memory.optimizer, "weights": memory.weights,
                "gradients": memory.gradients, "optimizer_state": memory.optimizer_state,
                "activations": memory.activations, "total": memory.total,
                "peak_activations": memory.peak_activations, "peak_gradients": memory.peak_gradients,
                "peak_temporary": memory.peak_temporary,
            },
        },
    }
