"""`cnnlab summary MODEL --fits 24GiB`: the largest batch whose training-memory estimate fits.

The estimate (memory.py) is a replay of one traced training step; activations scale exactly
with the batch, so every batch is answered from the one trace, by bisection, without tracing again.
"""

from __future__ import annotations

import json
import re

from cnnlab.analysis.formatters import human_bytes, wrap
from cnnlab.analysis.i18n import ANSWERS, words
from cnnlab.analysis.memory import training_memory
from cnnlab.analysis.rows import TrainingMemory
from cnnlab.analysis.shapes import shape_text
from cnnlab.errors import CnnlabError

_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_LARGEST_BATCH = 2**40


def parse_bytes(text: str) -> int:
    """'24GiB' → 24·2³⁰, '24GB' → 24·10⁹ (SI, as disk and GPU makers write it), '512 MiB', '1e9'."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([a-z]*)\s*", str(text).lower())
    if match is None or match.group(2) not in _UNITS or float(match.group(1)) <= 0:
        raise CnnlabError(f"bad memory size '{text}': write a positive number and a unit, e.g. 24GiB, 512MiB "
                          "or 16GB (GB = 10⁹ bytes, GiB = 2³⁰)")
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def memory_at(summary, batch: int, precision: str, optimizer: str) -> TrainingMemory:
    """The training-memory estimate of `summary`'s model at `batch`, from its traced step."""
    t = summary.totals
    return training_memory(params=t.params, trainable=t.params_trainable, steps=summary.steps,
                           batch_ratio=batch / summary.traced_batch, precision=precision, optimizer=optimizer)


def largest_batch(summary, budget: int, precision: str, optimizer: str) -> int:
    """The largest batch whose estimate is at most `budget` bytes (0 when not even 1 fits). The
    estimate grows with the batch, so doubling then bisecting finds it."""
    def fits(batch: int) -> bool:
        return memory_at(summary, batch, precision, optimizer).total <= budget

    if not fits(1):
        return 0
    low = 1
    while fits(2 * low):
        low *= 2
        if low >= _LARGEST_BATCH:
            return low
    high = 2 * low  # fits(low) and not fits(high)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if fits(middle) else (low, middle)
    return low


def fits_text(summary, budget_text: str, precision: str, optimizer: str, fmt: str = "table", lang: str = "en") -> str:
    budget = parse_bytes(budget_text)
    batch = largest_batch(summary, budget, precision, optimizer)
    at = memory_at(summary, max(batch, 1), precision, optimizer)
    following = memory_at(summary, batch + 1, precision, optimizer)
    if fmt == "json":
        return json.dumps({"model": summary.model, "input_shape": list(summary.input_shape), "budget": budget,
                           "precision": precision, "optimizer": optimizer, "batch": batch,
                           "memory": vars(at), "next_batch_memory": following.total, "notes": summary.notes},
                          indent=2, ensure_ascii=False) + "\n"
    text = words(ANSWERS, lang)
    shown = budget_text if budget_text.strip().lower().endswith("ib") else f"{budget_text} = {human_bytes(budget)}"
    head = dict(model=summary.model, shape=shape_text(summary.input_shape), precision=precision,
                optimizer=optimizer, budget=shown)
    if batch == 0:
        lines = [text["fits_none"].format(needed=human_bytes(at.total), **head)]
    else:
        lines = [text["fits"].format(batch=batch, **head),
                 text["fits_parts"].format(batch=batch, total=human_bytes(at.total), weights=human_bytes(at.weights),
                                           state=human_bytes(at.optimizer_state), so_far=human_bytes(at.peak_gradients),
                                           alive=human_bytes(at.peak_activations),
                                           temporary=human_bytes(at.peak_temporary),
                                           largest=human_bytes(at.largest_temporary)),
                 text["fits_all"].format(gradients=human_bytes(at.gradients), activations=human_bytes(at.activations),
                                         largest=human_bytes(at.largest_temporary)),
                 text["fits_next"].format(batch=batch + 1, total=human_bytes(following.total))]
    lines += summary.notes
    if fmt == "md":
        return "\n".join(f"- {line}" for line in lines) + "\n"
    return "\n".join(wrapped for line in lines for wrapped in wrap(line)) + "\n"
