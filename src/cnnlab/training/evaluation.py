"""Measuring a finished run: `cnnlab eval` (a data split, saved as JSON in the run) and
`cnnlab predict` (top-k classes of image files)."""

from __future__ import annotations

from pathlib import Path

import torch

from cnnlab import run as rundir
from cnnlab.device import autocast_for, pick_device, resolve_precision
from cnnlab.errors import CnnlabError
from cnnlab.inference import infer, logits_of
from cnnlab.run.model import load_model


def evaluate_run(path, *, dataset=None, split="test", which="best", batch_size=1024, data_dir=None,
                 download=False, device="auto", tta=None) -> tuple[dict, Path]:
    """Evaluate a run on `split` of `dataset` (default: its own, read from where it was found);
    writes eval-<dataset>[-val][-<tta>].json into the run (a new evaluation replaces the last one)
    and returns (report, path). `tta` (flip, 10crop, 144crop) averages each image's views
    (`cnnlab.data.tta`)."""
    from cnnlab.data.loaders import build_loaders
    from cnnlab.data.tta import VIEWS, ViewAverage, check_mode, crop_padding

    device = pick_device(device)
    model, config, checkpoint = load_model(path, which, device)
    run = rundir.run_of(checkpoint)
    own = dataset is None or dataset == config["dataset"]["dataset"]
    dataset = dataset or config["dataset"]["dataset"]
    val_split = config.get("train", {}).get("val_split", 0) if split == "val" else 0
    if split == "val" and not val_split:
        raise CnnlabError("this run held out no validation split: evaluate --split test")
    if tta is not None:
        check_mode(tta)
    # an image folder's evaluation images follow the run's pipeline; an in-memory set's 10 crops its crop:P
    specs = config.get("train", {}).get("augment", []) if own else []
    data = build_loaders(dataset, tuple(config["input_shape"]), batch_size,
                         data_dir=rundir.data_dir_of(config, data_dir) if own else data_dir, download=download,
                         device=device, val_split=val_split, seed=config.get("seed", 0), tta=tta,
                         tta_pad=crop_padding(specs), augment=specs if dataset == "imagefolder" else ())
    num_classes = config["model_kwargs"].get("num_classes", len(data.classes))
    if len(data.classes) != num_classes:
        raise CnnlabError(f"{dataset} has {len(data.classes)} classes but the run's model predicts {num_classes}")
    loader = data.val if split == "val" else data.test
    autocast = autocast_for(resolve_precision(config.get("precision", "auto"), device), device)
    scored = model if tta is None else ViewAverage(model, VIEWS[tta])
    report = infer(scored, loader, num_classes, autocast=autocast).metrics
    report = {"model": config["model"], "dataset": dataset, "split": split, "checkpoint": checkpoint.name,
              "tta": tta, "views": VIEWS[tta] if tta else 1, "classes": list(data.classes), **report}
    name = "-".join(["eval", dataset, *([split] if split != "test" else []), *([tta] if tta else [])])
    return report, rundir.write_json_atomic(run / f"{name}.json", report)


def predict_images(run, images, *, which="best", top=5, device="auto", invert=False):
    """[(image path, [(class name, probability)] * top, the model's input tensor)] for each image
    file (`invert`: 255 - each pixel before the preprocessing)."""
    from cnnlab.data.preprocess import load_image

    device = pick_device(device)
    model, config, _ = load_model(run, which, device)
    data = config["dataset"]
    classes = data["classes"]
    native = data.get("native_shape") if data.get("dataset") != "imagefolder" else None
    results = []
    with torch.inference_mode():
        for path in images:
            x = load_image(path, tuple(config["input_shape"]), data["mean"], data["std"], native_shape=native,
                           augment=() if native else config.get("train", {}).get("augment", ()), invert=invert)
            probabilities = torch.softmax(logits_of(model(x.to(device))).float(), dim=1)[0]
            values, indices = probabilities.topk(min(top, len(classes)))
            results.append((path, [(classes[i], p) for i, p in zip(indices.tolist(), values.tolist())], x))
    return results
