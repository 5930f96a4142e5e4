"""The scratch ResNet-20, plain-20 and NIN are the zoo's: same state-dict names, shapes and counts,
same logits, gradients, running statistics and SGD steps as torch (float64); a torch run's weights
load into them and back; and `check_model` finds every layer in agreement with autograd to 1e-10
(and finds a wrong backward)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import cnnlab
from cnnlab import scratch
from cnnlab.errors import CnnlabError
from cnnlab.run import write_config
from cnnlab.scratch.gradcheck import TORCH_TOLERANCE, WHOLE_MODEL, check_model
from cnnlab.scratch.layers import ReLU
from cnnlab.scratch.train import train_step
from cnnlab.run.checkpoint import save_checkpoint

MODELS = ["resnet20", "plain20", "nin_cifar"]

def run_config(model: str, model_kwargs: dict) -> dict:
    """A run's config.json as much as the scratch engine reads of it."""
    dataset = {"dataset": "cifar10", "classes": [str(k) for k in range(10)], "mean": [0.5] * 3, "std": [0.25] * 3}
    return {"model": model, "model_kwargs": model_kwargs, "input_shape": [3, 32, 32], "dataset": dataset}



def twins(name, seed=0, **kwargs):
    """A torch zoo model and its scratch twin holding the same weights, both float64."""
    torch.manual_seed(seed)
    reference = cnnlab.create(name, **kwargs).double()
    model = scratch.build(name, **kwargs).astype(np.float64)
    model.load_state_dict({k: v.numpy() for k, v in reference.state_dict().items()})
    return reference, model


def batch(n=4, size=32, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 3, size, size)), rng.integers(0, 10, n)


@pytest.mark.parametrize("name", MODELS + ["resnet56"])
def test_same_state_dict_names_shapes_and_parameter_count_as_the_zoo(name):
    reference = cnnlab.create(name)
    model = scratch.build(name)
    assert {k: tuple(v.shape) for k, v in reference.state_dict().items()} == {k: v.shape for k, v in model.state_dict().items()}
    assert list(reference.state_dict()) == list(model.state_dict())  # torch's order too
    assert sum(p.data.size for p in model.parameters().values()) == cnnlab.card(name).params


def test_resnet20_has_the_paper_parameter_count_and_plain20_no_shortcuts():
    resnet, plain = scratch.resnet20(), scratch.plain20()
    assert sum(p.data.size for p in resnet.parameters().values()) == 269_722  # He et al. 2015, Table 6: 0.27M
    assert sum(isinstance(layer, scratch.Add) for _, layer in resnet.leaves()) == 9
    assert sum(isinstance(layer, scratch.ZeroPadShortcut) for _, layer in resnet.leaves()) == 2
    assert not any(isinstance(layer, (scratch.Add, scratch.ZeroPadShortcut)) for _, layer in plain.leaves())


@pytest.mark.parametrize("name", MODELS)
def test_same_loss_gradients_and_running_statistics_as_torch(name):
    """One training-mode step on a batch; NIN's dropout gets the engine's masks in torch too."""
    reference, model = twins(name)
    x, y = batch()
    loss, dlogits = scratch.softmax_cross_entropy(model(x), y)
    model.backward(dlogits)
    masks = {path: layer._mask for path, layer in model.leaves() if isinstance(layer, scratch.Dropout)}
    modules = dict(reference.named_modules())
    for path, mask in masks.items():
        modules[path].register_forward_hook(lambda m, inputs, out, mask=mask: inputs[0] * torch.tensor(mask))
    torch_loss = F.cross_entropy(reference(torch.tensor(x)), torch.tensor(y))
    torch_loss.backward()
    assert abs(loss - torch_loss.item()) < 1e-12
    for name_, p in reference.named_parameters():
        assert np.abs(model.parameters()[name_].grad - p.grad.numpy()).max() < 1e-10, name_
    after = model.state_dict()
    for name_, b in reference.named_buffers():
        assert np.abs(after[name_] - b.numpy()).max() < 1e-12, name_


@pytest.mark.parametrize("name", ["resnet20", "plain20"])
def test_sgd_steps_and_evaluation_mode_agree_with_torch(name):
    """Three SGD steps (momentum, weight decay), then logits in evaluation mode: the running
    statistics the steps accumulated are used exactly as torch uses them."""
    reference, model = twins(name, seed=1)
    optimizer = scratch.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    torch_optimizer = torch.optim.SGD(reference.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    for step in range(3):
        x, y = batch(size=16, seed=step)
        train_step(model, optimizer, x, y)
        torch_optimizer.zero_grad()
        F.cross_entropy(reference(torch.tensor(x)), torch.tensor(y)).backward()
        torch_optimizer.step()
    x, _ = batch(size=16, seed=9)
    logits = model.eval()(x)
    assert np.abs(logits - reference.eval()(torch.tensor(x)).detach().numpy()).max() < 1e-10
    assert model.state_dict()["layer1.0.bn1.num_batches_tracked"] == 3


def test_a_torch_run_loads_into_the_engine_and_back(tmp_path):
    """A 'cnnlab train'-style run of resnet20 (float32 safetensors, batch-norm buffers) → the scratch
    twin gives its logits; the twin's state dict loads back into torch strictly."""
    torch.manual_seed(3)
    reference = cnnlab.create("resnet20")
    for module in reference.modules():  # trained-looking statistics, so losing them would show
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    write_config(tmp_path, run_config("resnet20", {"num_classes": 10}))
    save_checkpoint(tmp_path / "checkpoints", "best", reference.state_dict(), {"epoch": 1})
    model = scratch.load_run(tmp_path)
    x = batch()[0].astype(np.float32)
    expected = reference.eval()(torch.tensor(x)).detach().numpy()
    assert np.abs(model(x) - expected).max() < 1e-4

    back = cnnlab.create("resnet20")
    back.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()}, strict=True)
    assert torch.equal(back.eval()(torch.tensor(x)), reference(torch.tensor(x)))


def test_runs_the_engine_cannot_build_are_one_line_errors(tmp_path):
    torch.manual_seed(0)
    write_config(tmp_path, run_config("googlenet", {}))
    with pytest.raises(CnnlabError, match="googlenet.*layers the scratch engine lacks; it builds: lenet5, resnet20"):
        scratch.load_run(tmp_path)
    write_config(tmp_path, run_config("resnet20", {"shortcut": "B"}))
    with pytest.raises(CnnlabError, match="option-A shortcut .* only, not 'B'"):
        scratch.load_run(tmp_path)
    write_config(tmp_path, run_config("resnet20", {"zero_init_residual": True}))
    with pytest.raises(CnnlabError, match="cannot take"):
        scratch.load_run(tmp_path)
    write_config(tmp_path, run_config("resnet20", {}))
    save_checkpoint(tmp_path / "checkpoints", "best", cnnlab.create("resnet32").state_dict(), {"epoch": 1})
    with pytest.raises(CnnlabError, match="do not fit the scratch resnet20: .*unexpected.*layer1.3"):
        scratch.load_run(tmp_path)


@pytest.mark.parametrize("name, size, training", [
    ("lenet5", 32, True), ("resnet20", 8, True), ("resnet20", 8, False), ("plain20", 8, True), ("nin_cifar", 12, True),
])
def test_every_layer_agrees_with_autograd(name, size, training):
    """The gradient check a student runs: each layer alone on what the batch brought it, and the
    whole model, against torch autograd to 1e-10 and finite differences to 1e-6 (float64)."""
    model = scratch.build(name, seed=0).astype(np.float64).train(training)
    channels = 1 if name == "lenet5" else 3
    rng = np.random.default_rng(0)
    rows = check_model(model, name, {}, rng.standard_normal((2, channels, size, size)), rng.integers(0, 10, 2), samples=4)
    assert [row.layer for row in rows] == [path for path, _ in model.leaves()] + [WHOLE_MODEL]
    for row in rows:
        assert row.vs_torch < TORCH_TOLERANCE and row.vs_numeric < 1e-6, row
        assert row.compared > 0, row
    assert all(row.ok for row in rows)


def test_the_check_finds_a_wrong_backward():
    """A ReLU whose backward forgets its mask: its own row disagrees, and the whole model's; every
    other layer, checked alone on what the batch brought it, still agrees (that is the point)."""

    class LeakyBackward(ReLU):
        def backward(self, dout):
            return dout  # wrong: the mask is missing

    model = scratch.resnet20(seed=0).astype(np.float64)
    block = model.layers[4][1].layers[0][1]  # layer2.0
    index = [name for name, _, _ in block.nodes].index("relu1")
    block.nodes[index] = ("relu1", LeakyBackward(), block.nodes[index][2])
    rng = np.random.default_rng(0)
    rows = check_model(model, "resnet20", {}, rng.standard_normal((2, 3, 8, 8)), rng.integers(0, 10, 2), samples=2)
    assert {row.layer for row in rows if not row.ok} == {"layer2.0.relu1", WHOLE_MODEL}


def test_shortcut_options_the_engine_lacks_are_refused():
    with pytest.raises(CnnlabError, match="not 'C'"):
        scratch.build("resnet20", shortcut="C")
    assert not any(isinstance(layer, scratch.Add) for _, layer in scratch.build("plain20", shortcut="B").leaves())
    with pytest.raises(CnnlabError, match="no model 'resnet18'; it builds: lenet5, resnet20"):
        scratch.build("resnet18")
