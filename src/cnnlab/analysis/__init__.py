"""The analyzer: exact per-layer shapes, parameters, memory, MACs and receptive fields.

`summary(model_or_name, input_shape, batch)` computes a `Summary` on `meta` tensors (nothing runs
on data); `render(summary, fmt, lang)` turns it into a table, Markdown, CSV or JSON.
"""

from cnnlab.analysis.formatters import render
from cnnlab.analysis.rows import Row, Summary, Totals
from cnnlab.analysis.summary import parse_shape, summary

__all__ = ["Row", "Summary", "Totals", "parse_shape", "render", "summary"]
