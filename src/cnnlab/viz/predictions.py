"""A run's predictions on its test set: what the confusion matrix, the mistakes grid and the
report are drawn from. Computed from the run's model and the data set's own files, so every
picture shows the same checkpoint on the same images."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from cnnlab.errors import CnnlabError
from cnnlab.viz.subject import Subject


@dataclass
class Predictions:
    images: np.ndarray  # uint8 N x C x H x W, as stored in the data set
    labels: np.ndarray  # N true classes
    probs: np.ndarray  # N x K softmax outputs

    @property
    def predicted(self) -> np.ndarray:
        return self.probs.argmax(1)

    def confusion(self) -> np.ndarray:
        """K x K counts: rows are true classes, columns predicted classes."""
        k = self.probs.shape[1]
        return np.bincount(self.labels * k + self.predicted, minlength=k * k).reshape(k, k)


def predict_test_set(subject: Subject, data_dir=None, batch_size: int = 500) -> Predictions:
    """Run the subject's model over the test split of the data set it was trained on."""
    from cnnlab.data import load_arrays

    if subject.config is None:
        raise CnnlabError("this needs a trained run (its test set and checkpoint), not a zoo model name")
    dataset = subject.config.get("dataset", {})
    name = dataset.get("dataset") or dataset.get("name")
    if not name or name == "imagefolder":
        raise CnnlabError(f"{subject.run} was not trained on a built-in data set; its test images are unknown to viz")
    images, labels, _ = load_arrays(name, "test", data_dir)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")  # a big model's test set is slow on CPU
    model = subject.model.to(device)
    chunks = []
    try:
        with torch.no_grad():
            for start in range(0, len(images), batch_size):
                x = subject.adapt(images[start : start + batch_size]).to(device)
                chunks.append(torch.softmax(model(x).float(), 1).cpu().numpy())
    finally:
        subject.model.to("cpu")  # the other figures run on the CPU
    return Predictions(images, labels, np.concatenate(chunks))
