"""`cnnlab compare`: the totals of several models side by side (e.g. the ImageNet lineage).

Parameters are counted as the model cards and `cnnlab list` count them, without training-only
auxiliary heads (GoogLeNet's); those get a column of their own when any model has them.
"""

from __future__ import annotations

from cnnlab.analysis.analyze import summary
from cnnlab.analysis.formatters import field_text, grid, human_bytes, human_count
from cnnlab.analysis.i18n import labels
from cnnlab.analysis.shapes import shape_text

KEYS = ("model", "input", "params", "aux", "macs", "activations", "training", "depth", "rf")


def compare(models, input_shape=None, batch: int = 1, fmt: str = "table", lang: str = "en", *,
            layout: str = "chw", model_kwargs: dict | None = None) -> str:
    """One row of totals per model, each at its own default input unless `input_shape` is given."""
    columns, words = labels(lang)
    readable = fmt in ("table", "md", "html")
    results = [summary(model, input_shape, batch, model_kwargs=model_kwargs if isinstance(model, str) else None)
               for model in models]
    keys = [k for k in KEYS if k != "aux" or any(r.totals.params_training_only for r in results)]
    body = []
    for result in results:
        t = result.totals
        cells = {
            "model": result.model,
            "input": shape_text(result.input_shape, layout),
            "params": f"{t.params_inference:,}" if readable else t.params_inference,
            "aux": f"{t.params_training_only:,}" if readable else t.params_training_only,
            "macs": human_count(t.macs) if readable else t.macs,
            "activations": human_bytes(t.activation_bytes * batch) if readable else t.activation_bytes * batch,
            "training": human_bytes(t.training_memory.total) if readable else t.training_memory.total,
            "depth": t.depth,
            "rf": field_text(t.receptive_field, "size") if t.receptive_field else "—",
        }
        if readable and t.receptive_field_nominal:
            cells["rf"] += f" ({words['nominal']})"
        body.append([cells[k] for k in keys])
    header = [columns[k] for k in keys]
    return grid(header, body, fmt, numeric=set(range(2, len(keys))))
