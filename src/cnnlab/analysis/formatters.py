"""Turn a `Summary` into text: an aligned table, Markdown, CSV or JSON.

Table and Markdown are for people (thousands separators, KB/MB, one line of totals each);
CSV and JSON are for programs (exact integers, bytes, English keys whatever `lang` says for CSV
headers).
"""

from __future__ import annotations

import csv
import io
import json
import unicodedata
from fractions import Fraction

from cnnlab.analysis.geometry import Axis
from cnnlab.analysis.i18n import labels
from cnnlab.analysis.rows import Row, Summary
from cnnlab.analysis.summary import shape_text
from cnnlab.errors import CnnlabError

FORMATS = ("table", "md", "csv", "json")


def render(summary: Summary, fmt: str = "table", lang: str = "en") -> str:
    """The summary as text in `fmt` ("table", "md", "csv", "json") with headers in `lang`."""
    _check(fmt)
    columns, totals = labels(lang)
    if fmt == "json":
        return json.dumps(_as_json(summary), indent=2, ensure_ascii=False) + "\n"
    keys = _visible_columns(summary.rows)
    header = [columns[k] for k in keys]
    if fmt == "csv":
        return grid(header, [[_raw_cells(row, summary.batch)[k] for k in keys] for row in summary.rows], "csv")
    body = [[_cells(row, summary.batch, totals)[k] for k in keys] for row in summary.rows]
    lines = _totals_lines(summary, totals)
    numeric = {i for i, k in enumerate(keys) if k in _NUMERIC}
    table = grid(header, body, fmt, numeric)
    if fmt == "md":
        return "\n".join([f"### {lines[0]}", "", table, *(f"- {line}" for line in lines[1:])]) + "\n"
    return "\n".join([lines[0], "", table, *lines[1:]]) + "\n"


_NUMERIC = {"params", "frozen", "memory", "macs", "other", "rf", "jump", "start", "units"}


def _check(fmt: str) -> None:
    if fmt not in FORMATS:
        raise CnnlabError(f"unknown format '{fmt}': choose one of {', '.join(FORMATS)}")


def grid(header: list[str], body: list[list], fmt: str, numeric: set[int] = frozenset()) -> str:
    """Rows as an aligned text table, a Markdown table or CSV (numeric columns right-aligned)."""
    _check(fmt)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerows([header, *body])
        return buffer.getvalue()
    if fmt == "json":
        return json.dumps([dict(zip(header, cells)) for cells in body], indent=2, ensure_ascii=False) + "\n"
    body = [[str(c) for c in cells] for cells in body]
    if fmt == "md":
        escape = lambda text: text.replace("|", "\\|")  # noqa: E731
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        return "\n".join(lines + ["| " + " | ".join(escape(c) for c in cells) + " |" for cells in body]) + "\n"
    widths = [max([_width(h), *(_width(cells[i]) for cells in body)]) for i, h in enumerate(header)]

    def line(cells):
        padded = [_pad(c, widths[i], right=i in numeric) for i, c in enumerate(cells)]
        return "  ".join(padded).rstrip()

    return "\n".join([line(header), "  ".join("-" * w for w in widths), *(line(c) for c in body)]) + "\n"


def _width(text: str) -> int:
    """Display width: CJK characters take two columns in a terminal."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int, right: bool) -> str:
    fill = " " * (width - _width(text))
    return fill + text if right else text + fill


def _visible_columns(rows: list[Row]) -> list[str]:
    keys = ["name", "type", "kernel", "stride", "padding", "groups", "dilation", "units", "input", "output",
            "params", "frozen", "memory", "macs", "other", "rf", "jump", "start", "notes"]
    hidden = set()
    if all(row.groups == 1 for row in rows):
        hidden.add("groups")
    if all(w.dilation == 1 for row in rows for w in row.windows):
        hidden.add("dilation")
    if all(row.params_frozen == 0 for row in rows):
        hidden.add("frozen")
    return [k for k in keys if k not in hidden]


def _axes(values) -> str:
    values = list(values)
    if not values:
        return ""
    return str(values[0]) if len(set(values)) == 1 else "×".join(str(v) for v in values)


def _number(value) -> str:
    if isinstance(value, Fraction) and value.denominator != 1:
        return f"{float(value):.2f}".rstrip("0").rstrip(".")
    return str(int(value))


def field_text(axes: tuple[Axis, ...], part: str) -> str:
    values = [getattr(a, part) for a in axes]
    if part == "jump" and any(v is None for v in values):
        return "—"
    return _axes(_number(v) for v in values)


def human_bytes(count: float) -> str:
    """Binary units, as the lecture tables (KB = 1024 bytes)."""
    for unit in ("B", "KB", "MB", "GB"):
        if abs(count) < 1024 or unit == "GB":
            text = f"{count:.2f}".rstrip("0").rstrip(".")
            return f"{text} {unit}"
        count /= 1024
    raise AssertionError


def human_count(count: int) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if count >= size:
            return f"{count / size:.3f}".rstrip("0").rstrip(".") + f" {unit}"
    return str(count)


def _raw_cells(row: Row, batch: int) -> dict[str, object]:
    return {
        "name": row.name,
        "type": row.type,
        "kernel": "×".join(str(w.kernel) for w in row.windows),
        "stride": _axes(w.stride for w in row.windows),
        "padding": _axes(w.padding for w in row.windows),
        "groups": row.groups if row.units is not None and row.windows else "",
        "dilation": _axes(w.dilation for w in row.windows),
        "units": "" if row.units is None else row.units,
        "input": shape_text(row.input_shape),
        "output": shape_text(row.output_shape),
        "params": row.params_trainable,
        "frozen": row.params_frozen,
        "memory": row.output_bytes * batch,
        "macs": row.macs,
        "other": row.other_ops,
        "rf": field_text(row.receptive_field, "size"),
        "jump": field_text(row.receptive_field, "jump"),
        "start": field_text(row.receptive_field, "start"),
        "notes": "; ".join(row.flags),
    }


def _cells(row: Row, batch: int, totals_labels: dict[str, str]) -> dict[str, str]:
    cells = {k: str(v) for k, v in _raw_cells(row, batch).items()}
    cells.update(
        params=f"{row.params_trainable:,}",
        frozen=f"{row.params_frozen:,}",
        memory=human_bytes(row.output_bytes * batch),
        macs=f"{row.macs:,}",
        other=f"{row.other_ops:,}",
    )
    if row.training_only:
        cells["notes"] = "; ".join([totals_labels["training_only"], *row.flags[1:]])
    return cells


def _totals_lines(summary: Summary, text: dict[str, str]) -> list[str]:
    t, b = summary.totals, summary.batch
    memory = t.training_memory
    rf = t.receptive_field
    return [
        text["title"].format(model=summary.model, shape=shape_text(summary.input_shape), batch=b),
        f"{text['params']}: {t.params:,} ("
        + text["params_detail"].format(trainable=f"{t.params_trainable:,}", frozen=f"{t.params_frozen:,}",
                                       aux=f"{t.params_training_only:,}") + ")",
        f"{text['weights']}: {human_bytes(t.weights_bytes)}",
        f"{text['input']}: {human_bytes(t.input_bytes * b)}",
        f"{text['activations']}: {human_bytes(t.activation_bytes * b)} ({text['values'].format(count=f'{t.activation_bytes // 4:,}')})",
        f"{text['macs'].format(flops=human_count(t.flops))}: {t.macs:,} ({human_count(t.macs)})",
        f"{text['other']}: {t.other_ops:,}",
        f"{text['depth']}: {t.depth}",
        f"{text['rf']}: {field_text(rf, 'size')}, {field_text(rf, 'jump')}" if rf else f"{text['rf']}: —",
        f"{text['training'].format(precision=memory.precision, optimizer=memory.optimizer, batch=b)}: "
        f"{human_bytes(memory.total)}, "
        + text["training_detail"].format(weights=human_bytes(memory.weights), gradients=human_bytes(memory.gradients),
                                         state=human_bytes(memory.optimizer_state),
                                         activations=human_bytes(memory.activations)),
        *summary.notes,
    ]


def _jsonable(value):
    if isinstance(value, Fraction):
        return int(value) if value.denominator == 1 else float(value)
    if isinstance(value, Axis):
        return {"size": _jsonable(value.size), "jump": _jsonable(value.jump), "start": _jsonable(value.start)}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _as_json(summary: Summary) -> dict:
    t = summary.totals
    rows = []
    for row in summary.rows:
        rows.append({
            "name": row.name, "type": row.type, "input_shape": list(row.input_shape),
            "output_shape": list(row.output_shape),
            "kernel": [w.kernel for w in row.windows], "stride": [w.stride for w in row.windows],
            "padding": [w.padding for w in row.windows], "dilation": [w.dilation for w in row.windows],
            "groups": row.groups, "units": row.units,
            "params_trainable": row.params_trainable, "params_frozen": row.params_frozen,
            "output_bytes_fp32": row.output_bytes * summary.batch, "allocates": row.allocates,
            "macs": row.macs, "other_ops": row.other_ops,
            "receptive_field": _jsonable(row.receptive_field), "depth": row.depth,
            "training_only": row.training_only, "flags": row.flags,
        })
    memory = t.training_memory
    return {
        "model": summary.model, "input_shape": list(summary.input_shape), "batch": summary.batch,
        "notes": summary.notes, "rows": rows,
        "totals": {
            "params": t.params, "params_trainable": t.params_trainable, "params_frozen": t.params_frozen,
            "params_training_only": t.params_training_only, "weights_bytes": t.weights_bytes,
            "input_bytes_fp32": t.input_bytes * summary.batch,
            "activation_bytes_fp32": t.activation_bytes * summary.batch,
            "macs": t.macs, "flops": t.flops, "other_ops": t.other_ops, "depth": t.depth,
            "receptive_field": _jsonable(t.receptive_field),
            "training_memory": {
                "precision": memory.precision, "optimizer": memory.optimizer, "weights": memory.weights,
                "gradients": memory.gradients, "optimizer_state": memory.optimizer_state,
                "activations": memory.activations, "total": memory.total,
            },
        },
    }
