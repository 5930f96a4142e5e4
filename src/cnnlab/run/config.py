"""`config.json`: read (validated), write (atomic), and where the run's data set was found.

A hand-edited or damaged config is refused with one line naming the file, the key and the fix;
every reader of a run goes through `read_config`, so no command trips over a missing key later.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from cnnlab.errors import CnnlabError
from cnnlab.run.files import write_json_atomic
from cnnlab.run.layout import CONFIG, require_run_dir

FIX = "restore it from a copy, or train a new run"


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _numbers(value) -> bool:
    return isinstance(value, list) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)


# key -> (check, what it must be); the keys every reader relies on
_REQUIRED = {
    "model": (lambda v: isinstance(v, str) and v != "", "a model name"),
    "model_kwargs": (lambda v: isinstance(v, dict), "an object of builder arguments"),
    "input_shape": (lambda v: isinstance(v, list) and len(v) == 3 and all(_is_int(d) and d > 0 for d in v),
                    "a list of three positive integers (C, H, W)"),
    "dataset": (lambda v: isinstance(v, dict), "an object describing the data"),
}
_DATASET = {
    "dataset": (lambda v: isinstance(v, str) and v != "", "a data set name"),
    "classes": (lambda v: isinstance(v, list) and len(v) > 0, "a non-empty list of class names"),
    "mean": (_numbers, "a list of numbers"),
    "std": (lambda v: _numbers(v) and all(s > 0 for s in v), "a list of positive numbers"),
}
_OPTIONAL = {
    "train": (lambda v: isinstance(v, dict), "an object of training settings"),
    "seed": (_is_int, "an integer"),
    "recipe": (lambda v: v is None or isinstance(v, str), "a recipe name or null"),
    "source": (lambda v: v is None or isinstance(v, dict), "an object or null"),
    "engine": (lambda v: isinstance(v, str), "an engine name"),
    "world_size": (lambda v: _is_int(v) and v > 0, "a positive integer"),
}


def validate_config(config, path: str | os.PathLike) -> dict:
    """`config` if it has every key readers rely on, with the right types; else one line."""
    if not isinstance(config, dict):
        raise CnnlabError(f"{path} is damaged: it must hold a JSON object; {FIX}")
    for table, where in ((_REQUIRED, config), (_DATASET, config.get("dataset")), (_OPTIONAL, config)):
        for key, (ok, what) in table.items():
            label = key if table is not _DATASET else f"dataset.{key}"
            if key not in where:
                if table is _OPTIONAL:
                    continue
                raise CnnlabError(f"{path} is damaged: it has no '{label}' (must be {what}); {FIX}")
            if not ok(where[key]):
                raise CnnlabError(f"{path} is damaged: '{label}' must be {what}, not {json.dumps(where[key])[:60]}; {FIX}")
    return config


def read_config(run: str | os.PathLike) -> dict:
    """The run's config.json, validated."""
    path = require_run_dir(run) / CONFIG
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise CnnlabError(f"cannot read {path} ({getattr(error, 'strerror', None) or error}); {FIX}") from None
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise CnnlabError(f"{path} is not valid JSON ({error.msg} at line {error.lineno}); {FIX}") from None
    return validate_config(config, path)


def write_config(run: str | os.PathLike, config: dict) -> None:
    write_json_atomic(Path(run) / CONFIG, validate_config(config, Path(run) / CONFIG))


def data_dir_of(config: dict, given: str | os.PathLike | None = None) -> str | None:
    """Where to read the run's data set: `given` (--data-dir) if any, else the folder the run
    found it in when it trained (config.json's dataset.data_dir; None for the embedded digits,
    which need no folder). A recorded folder that is gone is one line naming it and the fix."""
    if given is not None:
        return str(given)
    recorded = config["dataset"].get("data_dir")
    if recorded is not None and not Path(recorded).is_dir():
        raise CnnlabError(f"this run's data set ({config['dataset']['dataset']}) was read from {recorded} when it "
                          "trained, and that folder is gone: give --data-dir")
    return recorded
