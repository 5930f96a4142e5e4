"""The analyzer: exact per-layer shapes, parameters, memory, MACs and receptive fields.

`summary(model, input_shape, batch)` computes a `Summary` on `meta` tensors (nothing runs on
data); `render(summary, fmt, lang)` turns it into a table, Markdown, CSV or JSON; `print(summary)`
shows the table. Names are imported lazily so that `cnnlab calc` (pure arithmetic) never imports
torch.
"""

from importlib import import_module

_API = {
    "Row": "cnnlab.analysis.rows", "Summary": "cnnlab.analysis.rows", "Totals": "cnnlab.analysis.rows",
    "parse_shape": "cnnlab.analysis.shapes", "render": "cnnlab.analysis.formatters",
    "summary": "cnnlab.analysis.analyze",
}

__all__ = sorted(_API)


def __getattr__(name):
    if name in _API:
        return getattr(import_module(_API[name]), name)
    raise AttributeError(f"module 'cnnlab.analysis' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_API))
