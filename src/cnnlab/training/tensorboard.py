"""The metrics records as TensorBoard scalars too (`--tensorboard`; `pip install 'cnnlab[tensorboard]'`).

metrics.jsonl stays the record; TensorBoard gets the same numbers (`<split>/<key>` at the record's
optimizer step) in RUN/tensorboard/. A resumed run purges the events after its checkpoint's step,
so a run killed after logging and resumed shows each step once.
"""

from __future__ import annotations

from pathlib import Path

from cnnlab.errors import CnnlabError

FOLDER = "tensorboard"
KEYS = ("loss", "top1", "top5", "lr", "images_per_s")


def require() -> None:
    """Refuse --tensorboard before any work when the package is missing."""
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError:
        raise CnnlabError("--tensorboard needs the tensorboard package: pip install 'cnnlab[tensorboard]'") from None


class Scalars:
    def __init__(self, run_dir: Path, resumed_at: int | None):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(run_dir / FOLDER), purge_step=resumed_at)

    def write(self, records: list[dict]) -> None:
        for record in records:
            for key in KEYS:
                if record.get(key) is not None:
                    self.writer.add_scalar(f"{record['split']}/{key}", record[key], record["step"])
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
