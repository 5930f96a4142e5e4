"""`cnnlab compare`: the totals of several models side by side (e.g. the ImageNet lineage)."""

from __future__ import annotations

from cnnlab.analysis.formatters import field_text, grid, human_bytes, human_count
from cnnlab.analysis.i18n import labels
from cnnlab.analysis.summary import shape_text, summary

KEYS = ("model", "input", "params", "macs", "activations", "training", "depth", "rf")


def compare(models, input_shape=None, batch: int = 1, fmt: str = "table", lang: str = "en") -> str:
    """One row of totals per model, each at its own default input unless `input_shape` is given."""
    columns, _ = labels(lang)
    readable = fmt in ("table", "md")
    body = []
    for model in models:
        t = (result := summary(model, input_shape, batch)).totals
        rf = field_text(t.receptive_field, "size") if t.receptive_field else "—"
        body.append([
            result.model,
            shape_text(result.input_shape),
            f"{t.params:,}" if readable else t.params,
            human_count(t.macs) if readable else t.macs,
            human_bytes(t.activation_bytes * batch) if readable else t.activation_bytes * batch,
            human_bytes(t.training_memory.total) if readable else t.training_memory.total,
            t.depth,
            rf,
        ])
    header = [columns[k] for k in KEYS]
    return grid(header, body, fmt, numeric=set(range(2, len(KEYS))))
