"""`predictions.npz`: the final evaluation's test-set predictions, so that nothing downstream runs
the test set a second time (the report draws its confusion matrix and mistakes from it).

Arrays: `labels` (N true classes), `top` (N x k class indices, most probable first) and `probs`
(N x k softmax probabilities of those classes), k = min(5, classes); with `epoch`, `step` and
`checkpoint` (the weights they came from). Top-k keeps the file small for 1000 classes too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnnlab.errors import warn
from cnnlab.run.files import write_atomic
from cnnlab.run.layout import PREDICTIONS


@dataclass
class Predictions:
    labels: np.ndarray  # N
    top: np.ndarray  # N x k, most probable first
    probs: np.ndarray  # N x k
    epoch: int = 0
    step: int = 0
    checkpoint: str = "last"

    @property
    def predicted(self) -> np.ndarray:
        return self.top[:, 0]

    @property
    def confidence(self) -> np.ndarray:
        """Probability of the predicted class."""
        return self.probs[:, 0]

    def confusion(self, num_classes: int) -> np.ndarray:
        """K x K counts: rows are true classes, columns predicted classes."""
        cells = self.labels * num_classes + self.predicted
        return np.bincount(cells, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def save_predictions(run: str | os.PathLike, predictions: Predictions) -> Path:
    arrays = {"labels": predictions.labels.astype(np.int64), "top": predictions.top.astype(np.int64),
              "probs": predictions.probs.astype(np.float32), "epoch": np.int64(predictions.epoch),
              "step": np.int64(predictions.step), "checkpoint": np.array(predictions.checkpoint)}
    return write_atomic(Path(run) / PREDICTIONS, lambda tmp: np.savez(tmp, **arrays))


def load_predictions(run: str | os.PathLike) -> Predictions | None:
    """The run's stored predictions, or None (an older run, or a damaged file: with a warning)."""
    path = Path(run) / PREDICTIONS
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as f:
            result = Predictions(f["labels"], f["top"], f["probs"], int(f["epoch"]), int(f["step"]),
                                 str(f["checkpoint"]))
        if result.top.shape[0] != len(result.labels) or result.probs.shape != result.top.shape:
            raise ValueError("its arrays disagree in length")
    except (OSError, ValueError, KeyError) as error:
        warn(f"{path} is unreadable ({str(error).splitlines()[0][:80]}); the test set is evaluated again instead")
        return None
    return result
