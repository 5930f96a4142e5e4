"""The run directory: the contract between training, viz, report and finetune.

    runs/<date>-<model>-<dataset>/
      config.json      everything needed to repeat the run (model, model_kwargs, data, recipe, seed, versions)
      metrics.jsonl    one JSON object per line (see `append_metrics`)
      checkpoints/     last/ and best/ (see `cnnlab.training.checkpoint`)
      summary.md       the analyzer's table
      report.html      self-contained report
      figures/         PNGs

Nothing downstream reads the trainer's internals: it reads these files through this module.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from cnnlab.errors import CnnlabError

CONFIG = "config.json"
METRICS = "metrics.jsonl"
CHECKPOINTS = "checkpoints"
FIGURES = "figures"


def new_run_dir(out: str | os.PathLike | None, model: str, dataset: str, root: str | os.PathLike = "runs") -> Path:
    """Create a fresh run directory; an existing one is never reused or overwritten.

    `out` names the directory explicitly (it must not exist); otherwise a dated name under `root`
    is chosen, with a numeric suffix when two runs start in the same second.
    """
    if out is not None:
        path = Path(out)
        try:
            path.mkdir(parents=True)
        except FileExistsError:
            raise CnnlabError(f"output folder {path} already exists: choose another --out, or --resume {path}") from None
        return path
    stem = f"{time.strftime('%Y%m%d-%H%M%S')}-{model}-{dataset}"
    Path(root).mkdir(parents=True, exist_ok=True)
    for attempt in range(1, 1000):
        path = Path(root) / (stem if attempt == 1 else f"{stem}-{attempt}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise CnnlabError(f"could not create a new run folder under {root}")


def require_run_dir(path: str | os.PathLike) -> Path:
    """`path` as a run directory, or a one-line error saying what is missing."""
    path = Path(path)
    if not (path / CONFIG).is_file():
        raise CnnlabError(f"{path} is not a cnnlab run: it has no {CONFIG} (give the folder that 'cnnlab train' wrote)")
    return path


def write_json_atomic(path: Path, payload) -> None:
    """Write JSON through a temporary file and a rename, so a kill never leaves half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def write_config(run: Path, config: dict) -> None:
    write_json_atomic(Path(run) / CONFIG, config)


def read_config(run: str | os.PathLike) -> dict:
    return json.loads((require_run_dir(run) / CONFIG).read_text())


def append_metrics(run: Path, record: dict) -> None:
    """Append one record. Keys used by everyone: epoch, step, split ("train" | "val" | "test"),
    loss, top1, top5 (accuracies in [0, 1]), lr, images_per_s, time (seconds since the run began)."""
    with open(Path(run) / METRICS, "a") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_metrics(run: str | os.PathLike) -> list[dict]:
    path = require_run_dir(run) / METRICS
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def locate(path: str | os.PathLike, which: str = "best") -> tuple[Path, Path]:
    """(run directory, checkpoint folder) for a run folder or a checkpoint folder inside one.

    A run without a "best" checkpoint falls back to "last".
    """
    from cnnlab.training.checkpoint import WEIGHTS, find_checkpoint

    path = Path(path)
    if not path.exists():
        raise CnnlabError(f"{path} does not exist: give a run directory that 'cnnlab train' wrote")
    if (path / WEIGHTS).is_file():
        for parent in path.parents:
            if (parent / CONFIG).is_file():
                return parent, path
        raise CnnlabError(f"{path} is a checkpoint outside a run: cnnlab needs the run's {CONFIG} beside it")
    run = require_run_dir(path)
    try:
        return run, find_checkpoint(run, which)
    except CnnlabError:
        if which != "best":
            raise
        return run, find_checkpoint(run, "last")


def load_model(path: str | os.PathLike, which: str = "best", map_location="cpu"):
    """(model in eval mode, config) of a run: the zoo model its config names, with checkpoint `which`.

    `path` is a run directory or a checkpoint folder inside one. config.json holds "model" (zoo name)
    and "model_kwargs" (builder arguments). Checkpoints not written by cnnlab, and weights that do
    not fit the run's model, are refused with one line.
    """
    from cnnlab.models import create
    from cnnlab.training.checkpoint import is_cnnlab_state, load_checkpoint

    run, checkpoint = locate(path, which)
    config = read_config(run)
    weights, state = load_checkpoint(checkpoint, map_location=map_location)
    if not is_cnnlab_state(state):
        raise CnnlabError(f"{checkpoint} is not a cnnlab training checkpoint (no trainer marker in its state)")
    model = create(config["model"], **config.get("model_kwargs", {}))
    try:
        model.load_state_dict(weights)
    except RuntimeError as error:
        raise CnnlabError(f"{checkpoint}: weights do not fit {config['model']} ({str(error).splitlines()[0]})") from None
    return model.to(map_location).eval(), config
