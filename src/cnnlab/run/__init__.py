"""The run directory: the one contract between training and everything that reads a run.

    runs/<date>-<model>-<dataset>/
      config.json      everything needed to repeat the run (`run.config`)
      metrics.jsonl    one JSON record per finished epoch and split (`run.metrics`)
      checkpoints/     last/, best/: model.safetensors + state.pt (`run.checkpoint`)
      predictions.npz  the final evaluation's test-set predictions (`run.predictions`)
      summary.md/json  the analyzer's table (written by the command line)
      report.html      the report (written by `cnnlab report`)
      figures/         figures of `cnnlab viz`, named after their input
      .lock            held by the one process that trains the run (`run.lock`)

Training writes a run through this package, and viz, report, eval, transfer and scratch read it
through this package; it imports none of them. What is re-exported here is torch-free (the NumPy
engine uses it); `load_model`, `load_checkpoint` and `save_checkpoint` (from `run.model` and
`run.checkpoint`) import torch when first used.
"""

from importlib import import_module

from cnnlab.run.config import data_dir_of, read_config, validate_config, write_config
from cnnlab.run.files import write_atomic, write_json_atomic
from cnnlab.run.layout import (
    CHECKPOINTS,
    CONFIG,
    FIGURES,
    LOCK,
    METRICS,
    PREDICTIONS,
    REPORT,
    STATE,
    SUMMARY_JSON,
    SUMMARY_MD,
    WEIGHTS,
    check_output,
    find_checkpoint,
    is_run,
    new_run_dir,
    require_run_dir,
    run_of,
)
from cnnlab.run.lock import RunLock
from cnnlab.run.metrics import append_metrics, read_metrics, rewrite_metrics

__all__ = ["CHECKPOINTS", "CONFIG", "FIGURES", "LOCK", "METRICS", "PREDICTIONS", "REPORT", "STATE", "SUMMARY_JSON",
           "SUMMARY_MD", "WEIGHTS", "RunLock", "append_metrics", "check_output", "data_dir_of", "find_checkpoint",
           "is_run", "new_run_dir", "read_config", "read_metrics", "require_run_dir", "rewrite_metrics", "run_of",
           "validate_config", "write_atomic", "write_config", "write_json_atomic"]

_WITH_TORCH = {"load_model": "cnnlab.run.model", "load_checkpoint": "cnnlab.run.checkpoint",
               "save_checkpoint": "cnnlab.run.checkpoint"}


def __getattr__(name):
    if name in _WITH_TORCH:
        return getattr(import_module(_WITH_TORCH[name]), name)
    raise AttributeError(f"module 'cnnlab.run' has no attribute {name!r}")

