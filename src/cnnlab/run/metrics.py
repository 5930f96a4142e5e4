"""`metrics.jsonl`: one JSON record per line, appended by the trainer after each finished epoch.

Keys used by everyone: epoch, step, split ("train" | "val" | "test"), loss, top1, top5 (accuracies
in [0, 1]), lr, images_per_s, time (seconds of training). A kill can tear the last line; readers
ignore a torn last line with one warning, and a resume rewrites the file from the checkpoint (which
holds every finished epoch's records), so the file and the checkpoint always agree.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from cnnlab.errors import CnnlabError, warn
from cnnlab.run.files import os_error, write_atomic
from cnnlab.run.layout import METRICS, require_run_dir


def append_metrics(run: str | os.PathLike, records: list[dict]) -> None:
    """Append records, fsynced (one write: a kill tears at most the last line)."""
    text = "".join(json.dumps(record) + "\n" for record in records)
    try:
        with open(Path(run) / METRICS, "a", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    except OSError as error:
        raise os_error(error, Path(run) / METRICS) from None


def rewrite_metrics(run: str | os.PathLike, records: list[dict]) -> None:
    """Replace the file with exactly `records` (atomically)."""
    write_atomic(Path(run) / METRICS, "".join(json.dumps(record) + "\n" for record in records))


def read_metrics(run: str | os.PathLike, quiet: bool = False) -> list[dict]:
    """Every complete record; a torn last line is ignored (with one warning unless `quiet`), a
    damaged line before it is one error naming the line."""
    path = require_run_dir(run) / METRICS
    if not path.exists():
        return []
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as error:
        raise CnnlabError(f"cannot read {path} ({error.strerror})") from None
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError("not an object")
        except ValueError:
            if number == len(lines):
                if not quiet:
                    warn(f"{path}: the last line is incomplete (a write was interrupted) and is ignored; "
                         "'cnnlab train --resume' repairs it")
                break
            raise CnnlabError(f"{path} is damaged at line {number}: not a JSON record; restore it from a copy") from None
        records.append(record)
    return records
