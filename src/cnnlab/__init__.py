"""cnnlab: the classic convolutional networks, built, measured, trained and seen inside.

The public API is imported lazily, so `import cnnlab` stays cheap and each subsystem loads only
when it is used.
"""

from importlib import import_module

__version__ = "0.1.0"

# public name -> module that defines it
_API = {
    "CnnlabError": "cnnlab.errors",
    "create": "cnnlab.models",
    "list_models": "cnnlab.models",
    "card": "cnnlab.models",
    "summary": "cnnlab.analysis",
    "load_arrays": "cnnlab.data", "build_loaders": "cnnlab.data.loaders", "load_image": "cnnlab.data.preprocess",
    "from_torchvision": "cnnlab.transfer.interop", "to_torchvision": "cnnlab.transfer.interop",
    "write_report": "cnnlab.viz",
    "train": "cnnlab.training.trainer", "TrainSpec": "cnnlab.training.spec", "TrainSettings": "cnnlab.training.settings", "evaluate_run": "cnnlab.training.evaluation",
}

__all__ = sorted(_API)


def __getattr__(name):
    if name in _API:
        return getattr(import_module(_API[name]), name)
    raise AttributeError(f"module 'cnnlab' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_API))
