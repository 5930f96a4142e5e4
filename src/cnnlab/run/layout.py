"""Names inside a run directory, creating one, finding one and its checkpoints, and what no command
but the trainer may write (`check_output`).

Torch-free. A checkpoint is a folder `checkpoints/<name>/` holding `model.safetensors` and
`state.pt`; `<name>.old` is the previous copy kept while a new one is swapped in (see
`run.checkpoint`), so a reader falls back to it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from cnnlab.errors import CnnlabError
from cnnlab.run.files import os_error

CONFIG = "config.json"
METRICS = "metrics.jsonl"
CHECKPOINTS = "checkpoints"
PREDICTIONS = "predictions.npz"
SUMMARY_MD = "summary.md"
SUMMARY_JSON = "summary.json"
REPORT = "report.html"
FIGURES = "figures"
LOCK = ".lock"
WEIGHTS = "model.safetensors"
STATE = "state.pt"

# What only the trainer writes: no other command may replace these, --force or not.
TRAINER_FILES = (CONFIG, METRICS, PREDICTIONS, LOCK)


def new_run_dir(out: str | os.PathLike | None, model: str, dataset: str, root: str | os.PathLike = "runs") -> Path:
    """Create a fresh run directory; an existing one is never reused or overwritten.

    `out` names the directory explicitly (it must not exist); otherwise a dated name under `root`
    is chosen, with a numeric suffix when two runs start in the same second.
    """
    if out is not None:
        path = refuse_existing_run_dir(out)
        try:
            path.mkdir(parents=True)
        except OSError as error:
            raise os_error(error, path, "create") from None
        return path
    stem = f"{time.strftime('%Y%m%d-%H%M%S')}-{model}-{dataset}"
    try:
        Path(root).mkdir(parents=True, exist_ok=True)
        for attempt in range(1, 1000):
            path = Path(root) / (stem if attempt == 1 else f"{stem}-{attempt}")
            try:
                path.mkdir()
                return path
            except FileExistsError:
                continue
    except OSError as error:
        raise os_error(error, Path(root), "create") from None
    raise CnnlabError(f"could not create a new run folder under {root}")


def refuse_existing_run_dir(out: str | os.PathLike) -> Path:
    """`out` as the path of a run directory still to be created: an existing path is refused."""
    path = Path(out)
    try:
        exists, run = path.exists(), is_run(path)
    except OSError as error:
        raise os_error(error, path, "create") from None
    if exists:
        hint = f"resume it with --resume {path}" if run else "cnnlab never trains into an existing folder"
        raise CnnlabError(f"output folder {path} already exists: choose another --out ({hint})")
    return path


def remove_stale_temporaries(run: Path) -> None:
    """What a killed writer left: hidden `.NAME.*.tmp*` files (`files.write_atomic`) and
    `checkpoints/NAME.tmp/` folders. Only the holder of the run's lock may call this."""
    import shutil

    for path in [*run.glob(".*.tmp*"), *(run / FIGURES).glob(".*.tmp*")]:
        path.unlink(missing_ok=True)
    for path in (run / CHECKPOINTS).glob("*.tmp"):
        shutil.rmtree(path, ignore_errors=True)


def is_run(path: str | os.PathLike) -> bool:
    return (Path(path) / CONFIG).is_file()


def require_run_dir(path: str | os.PathLike) -> Path:
    """`path` as a run directory, or a one-line error saying what is missing."""
    path = Path(path)
    if not path.exists():
        raise CnnlabError(f"{path} does not exist: give a run directory that 'cnnlab train' wrote")
    if not is_run(path):
        raise CnnlabError(f"{path} is not a cnnlab run: it has no {CONFIG} (give the folder that 'cnnlab train' wrote)")
    return path


def run_of(path: str | os.PathLike) -> Path | None:
    """The run directory that holds `path` (itself included), or None."""
    path = Path(path).resolve()
    for folder in (path, *path.parents):
        if is_run(folder):
            return folder
    return None


def _complete(folder: Path) -> bool:
    return (folder / WEIGHTS).is_file() and (folder / STATE).is_file()


def find_checkpoint(path: str | os.PathLike, which: str = "best") -> tuple[Path, Path]:
    """(run directory, checkpoint folder) for a run directory or a checkpoint folder inside one.

    Tried in order: `which`, its `.old` copy, and for "best" also "last" (a run without a
    validation improvement yet, or a scratch run, may have only "last")."""
    path = Path(path)
    if _complete(path):
        run = run_of(path)
        if run is None:
            raise CnnlabError(f"{path} is a checkpoint outside a run: cnnlab needs the run's {CONFIG} beside it")
        return run, path
    run = require_run_dir(path)
    names = [which, f"{which}.old"] + (["last", "last.old"] if which == "best" else [])
    for name in names:
        if _complete(run / CHECKPOINTS / name):
            return run, run / CHECKPOINTS / name
    raise CnnlabError(f"{run} has no checkpoint '{which}' (expected {CHECKPOINTS}/{which}/{WEIGHTS} and {STATE}): "
                      "the run has not finished a checkpoint yet")


def protected_reason(path: str | os.PathLike) -> str | None:
    """Why no command but the trainer may write `path` (a run's config, metrics, predictions, lock
    or anything under its checkpoints/), or None."""
    path = Path(path).resolve()
    for folder in path.parents:
        if is_run(folder):
            inside = path.relative_to(folder).parts
            if inside[0] == CHECKPOINTS:
                return f"it is inside the checkpoints of run {folder}"
            if len(inside) == 1 and inside[0] in TRAINER_FILES:
                return f"it is the {inside[0]} of run {folder}"
            return None
    return None


def check_output(path: str | os.PathLike, force: bool = False) -> Path:
    """`path` if a command may write it: never a run's own files (see `layout.protected_reason`),
    never a folder, an existing file only with `force`."""
    path = Path(path)
    reason = protected_reason(path)
    if reason is not None:
        raise CnnlabError(f"refusing to write {path}: {reason}, which only 'cnnlab train' writes; choose another --out")
    if path.is_dir():
        raise CnnlabError(f"{path} is a folder: give a file name")
    if (path.exists() or path.is_symlink()) and not force:
        raise CnnlabError(f"{path} already exists: choose another --out, or add --force to replace it")
    return path
