"""Write a trained model for use outside cnnlab: ONNX, TorchScript or safetensors.

Each file carries the same metadata (zoo model name, builder arguments, input shape, class names,
normalisation, the run it came from), so whoever receives it knows how to feed it:
ONNX in the model's metadata_props, TorchScript in an extra file `cnnlab.json`, safetensors in
its header (a cnnlab safetensors file is also a valid SOURCE for `cnnlab finetune`).
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import torch
from torch import nn

from cnnlab.errors import CnnlabError

FORMATS = {"onnx": ".onnx", "torchscript": ".ts", "safetensors": ".safetensors"}
ONNX_OPSET = 18


def export_model(model: nn.Module, fmt: str, path: str | os.PathLike, input_shape, metadata: dict[str, str]) -> Path:
    """Write `model` (in eval mode) as `fmt` to `path` atomically (see `cnnlab.run.files`)."""
    from cnnlab.run import write_atomic

    if fmt not in FORMATS:
        raise CnnlabError(f"unknown export format '{fmt}': choose one of {', '.join(FORMATS)}")
    model = model.eval()
    example = torch.zeros(2, *input_shape)

    def write(tmp: Path) -> None:
        if fmt == "onnx":
            _export_onnx(model, example, tmp, metadata)
        elif fmt == "torchscript":
            with warnings.catch_warnings():  # PyTorch marks TorchScript deprecated; the format still loads everywhere
                warnings.simplefilter("ignore", FutureWarning)
                traced = torch.jit.trace(model, example)
                torch.jit.save(traced, str(tmp), _extra_files={"cnnlab.json": json.dumps(metadata)})
        else:
            from safetensors.torch import save_file

            save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(tmp),
                      metadata=metadata)

    return write_atomic(path, write)


def _export_onnx(model: nn.Module, example: torch.Tensor, path: Path, metadata: dict[str, str]) -> None:
    try:
        import onnxscript  # noqa: F401  (torch's ONNX exporter needs it)
    except ImportError:
        raise CnnlabError("ONNX export needs the onnx and onnxscript packages: pip install 'cnnlab[export]'") from None
    program = torch.onnx.export(
        model,
        (example,),
        dynamo=True,
        verbose=False,
        opset_version=ONNX_OPSET,
        input_names=["input"],
        output_names=["logits"],
        dynamic_shapes=({0: torch.export.Dim("batch", min=1)},),
    )
    program.model.metadata_props.update(metadata)
    program.save(str(path), external_data=False)


def run_metadata(run: Path, config: dict) -> dict[str, str]:
    """The metadata every exported file carries (safetensors allows only str -> str)."""
    data = config.get("dataset") or {}
    return {
        "cnnlab_model": config["model"],
        "model_kwargs": json.dumps(config.get("model_kwargs", {})),
        "input_shape": json.dumps(config["input_shape"]),
        "dataset": str(data.get("dataset")),
        "classes": json.dumps(data.get("classes", [])),
        "mean": json.dumps(data.get("mean", [])),
        "std": json.dumps(data.get("std", [])),
        "source_run": str(Path(run).resolve()),
    }


def export_run(run: str | os.PathLike, fmt: str, out: str | os.PathLike | None = None, which: str = "best",
               force: bool = False):
    """Export a run's model (checkpoint `which`); default file: RUN/export/model.<ext>. An existing
    file is replaced only with `force`, and never a run's own files.
    Returns (path, model, input_shape) so a caller can check the file against the model."""
    from cnnlab.run import check_output
    from cnnlab.run.model import load_model

    if fmt not in FORMATS:
        raise CnnlabError(f"unknown export format '{fmt}': choose one of {', '.join(FORMATS)}")
    path = check_output(Path(out) if out else Path(run) / "export" / f"model{FORMATS[fmt]}", force)
    model, config, _ = load_model(run, which)
    input_shape = tuple(config["input_shape"])
    return export_model(model, fmt, path, input_shape, run_metadata(run, config)), model, input_shape


def onnx_max_difference(path: str | os.PathLike, model: nn.Module, input_shape, batch: int = 3, seed: int = 0) -> float:
    """Largest |onnxruntime - PyTorch| over the outputs for a random batch (onnxruntime needed)."""
    import onnxruntime

    x = torch.randn(batch, *input_shape, generator=torch.Generator().manual_seed(seed))
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (theirs,) = session.run(None, {"input": x.numpy()})
    with torch.no_grad():
        ours = model.eval()(x).numpy()
    return float(abs(theirs - ours).max())
