"""Export (ONNX checked by onnxruntime, TorchScript, safetensors) and layer embeddings, on run folders."""

import json

import numpy as np
import onnx
import pytest
import torch

import cnnlab
from cnnlab.cli import main
from cnnlab.data.readers import load_arrays
from cnnlab.errors import CnnlabError
from cnnlab.run import write_config
from cnnlab.run.checkpoint import FORMAT, save_checkpoint
from cnnlab.transfer.export import export_run, onnx_max_difference
from cnnlab.transfer.features import embed, extract_run_features
from cnnlab.transfer.source import load_source


@pytest.fixture
def make_run(tmp_path, pretrained_like):
    """A factory of run folders as `cnnlab train` leaves them, with pretrained-looking weights."""
    return lambda name, input_shape, **kwargs: _save_run(tmp_path, pretrained_like(name, **kwargs), name, input_shape,
                                                         **kwargs)


def _save_run(root, model, name, input_shape, dataset="digits", **kwargs):
    run = root / f"run-{name}"
    run.mkdir()
    write_config(run, {"model": name, "model_kwargs": kwargs, "input_shape": list(input_shape),
                       "dataset": {"dataset": dataset, "classes": [str(d) for d in range(10)], "mean": [0.3], "std": [0.4]}})
    save_checkpoint(run / "checkpoints", "best", model.state_dict(), {"format": FORMAT, "epoch": 1})
    return run, model.eval()


def test_onnx_export_of_a_resnet_matches_pytorch_under_onnxruntime(tmp_path, capsys, make_run):
    run, model = make_run("resnet20", (3, 32, 32), num_classes=10)
    assert main(["export", str(run), "--format", "onnx"]) == 0
    assert "max |difference|" in capsys.readouterr().out
    path = run / "export" / "model.onnx"
    # a batch size other than the export's 2: the batch axis is dynamic
    assert onnx_max_difference(path, model, (3, 32, 32), batch=5, seed=1) < 1e-4
    metadata = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert metadata["cnnlab_model"] == "resnet20" and json.loads(metadata["input_shape"]) == [3, 32, 32]


def test_onnx_export_of_lenet5_1998_with_its_custom_layers_matches_pytorch(tmp_path, make_run):
    run, model = make_run("lenet5_1998", (1, 32, 32), num_classes=10)
    path, _, shape = export_run(run, "onnx")
    assert onnx_max_difference(path, model, shape, batch=3) < 1e-4


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")  # PyTorch deprecates TorchScript
def test_torchscript_and_safetensors_exports_reload_to_the_same_outputs(tmp_path, make_run):
    run, model = make_run("resnet20", (1, 32, 32), num_classes=4, in_channels=1)
    x = torch.randn(3, 1, 32, 32)
    with torch.no_grad():
        expected = model(x)
        path, _, _ = export_run(run, "torchscript")
        extra = {"cnnlab.json": ""}
        scripted = torch.jit.load(str(path), _extra_files=extra)
        torch.testing.assert_close(scripted(x), expected, rtol=1e-5, atol=1e-5)
        assert json.loads(extra["cnnlab.json"])["cnnlab_model"] == "resnet20"

        path, _, _ = export_run(run, "safetensors", out=tmp_path / "w.safetensors")
        source = load_source(str(path))  # names its own model: no --model needed
        assert (source.name, source.kwargs, source.input_shape) == ("resnet20", {"num_classes": 4, "in_channels": 1}, (1, 32, 32))
        assert source.record["source_run"] == str(run.resolve())
        assert torch.equal(source.model(x), expected)


def test_embedding_a_layer_copies_its_output_before_an_inplace_relu():
    torch.manual_seed(0)
    model = cnnlab.create("lenet5").eval()
    x = torch.randn(4, 1, 32, 32)
    features, labels = embed(model, "features.c3", [(x, torch.arange(4))])
    with torch.no_grad():
        c3 = model.features.c3(model.features.s2(torch.relu(model.features.c1(x))))
    assert features.shape == (4, 16 * 10 * 10) and (features < 0).any()  # before relu3, which is in place
    np.testing.assert_allclose(features, c3.flatten(1).numpy(), rtol=1e-6, atol=1e-6)
    assert labels.tolist() == [0, 1, 2, 3]


def test_default_embedding_is_what_the_classifier_reads():
    torch.manual_seed(0)
    model = cnnlab.create("lenet5").eval()
    x = torch.randn(4, 1, 32, 32)
    features, _ = embed(model, "classifier.output", [(x, torch.zeros(4))], head_input=True)
    head = model.classifier.output
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(features) @ head.weight.T + head.bias, model(x), rtol=1e-5, atol=1e-5)


def test_features_command_saves_both_splits_of_digits_with_their_labels(tmp_path, capsys, make_run):
    run, _ = make_run("lenet5", (1, 32, 32), num_classes=10)
    out = tmp_path / "f.npz"
    assert main(["features", str(run), "--dataset", "digits", "--out", str(out), "--device", "cpu"]) == 0
    assert "train: 1,437 images x 84 features" in capsys.readouterr().out
    saved = np.load(out)  # allow_pickle is False by default: plain arrays only
    assert saved["train_features"].shape == (1437, 84) and saved["test_features"].shape == (360, 84)
    _, test_labels, _ = load_arrays("digits", "test")
    _, train_labels, _ = load_arrays("digits", "train")
    assert np.array_equal(saved["test_labels"], test_labels)  # the test split keeps its order
    assert np.array_equal(np.bincount(saved["train_labels"]), np.bincount(train_labels))
    assert str(saved["layer"]) == "input of classifier.output" and list(saved["classes"]) == [str(d) for d in range(10)]
    with pytest.raises(CnnlabError, match="did you mean features.c3"):
        extract_run_features(run, layer="feature.c3", device="cpu")
