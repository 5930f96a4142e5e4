"""A run's predictions on its test set, with the images: what the confusion matrix, the mistakes
grid and the report are drawn from. Either the run's own stored predictions (the trainer's final
evaluation, `predictions.npz`) or a fresh pass of `cnnlab.inference` with a checkpoint; the test
images come from the data set's files, found where the run found them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from cnnlab.errors import CnnlabError
from cnnlab.run.predictions import Predictions
from cnnlab.viz.subject import Subject


@dataclass
class TestImages:
    """The test split as stored (uint8 N x C x H x W, or None with the reason in `missing`) and
    its predictions."""

    images: np.ndarray | None
    predictions: Predictions
    missing: str = ""

    @property
    def labels(self) -> np.ndarray:
        return self.predictions.labels


def _test_split(subject: Subject, data_dir):
    from cnnlab.data import load_arrays
    from cnnlab.run import data_dir_of

    if subject.config is None:
        raise CnnlabError("this needs a trained run (its test set and checkpoint), not a zoo model name")
    name = subject.config["dataset"]["dataset"]
    if name == "imagefolder":
        raise CnnlabError(f"{subject.run} was trained on an image folder; these figures need a built-in data set")
    return load_arrays(name, "test", data_dir_of(subject.config, data_dir))


def predict_test_set(subject: Subject, data_dir=None, batch_size: int = 500) -> TestImages:
    """Run the subject's model over the test split of the data set it was trained on."""
    from cnnlab.device import pick_device
    from cnnlab.inference import infer

    images, labels, _ = _test_split(subject, data_dir)
    device = pick_device("auto")  # a big model's test set is slow on the CPU
    batches = ((subject.adapt(images[i:i + batch_size]).to(device), torch.from_numpy(labels[i:i + batch_size]).to(device))
               for i in range(0, len(images), batch_size))
    try:
        evaluation = infer(subject.model.to(device), batches, len(subject.classes), keep_predictions=True)
    finally:
        subject.model.to("cpu")  # the other figures run on the CPU
    return TestImages(images, evaluation.predictions)


def stored_test_set(subject: Subject, data_dir, predictions: Predictions) -> TestImages:
    """The run's stored predictions (`run.predictions.load_predictions`) with its test images."""
    images, labels, _ = _test_split(subject, data_dir)
    if not np.array_equal(labels, predictions.labels):
        raise CnnlabError(f"{subject.run}/predictions.npz does not match the test set found now "
                          "(a different copy of the data?): give --data-dir")
    return TestImages(images, predictions)
