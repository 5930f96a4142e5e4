"""The scratch LeNet-5 is the zoo's lenet5: same parameter names and shapes, same logits, and the
same weights after SGD steps (float64); it reads a cnnlab run's checkpoint without torch."""

import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import cnnlab
from cnnlab import scratch
from cnnlab.errors import CnnlabError
from cnnlab.run import write_config

DIGITS = {"dataset": "digits", "classes": [str(d) for d in range(10)], "mean": [0.3], "std": [0.4]}


def config_of(model: str) -> dict:
    """The part of a run's config.json that the scratch engine reads."""
    return {"model": model, "model_kwargs": {}, "input_shape": [1, 32, 32], "dataset": DIGITS}
from cnnlab.scratch.train import train_step
from cnnlab.run.checkpoint import save_checkpoint


def twins(dtype=torch.float64, seed=0, conv_method="im2col"):
    """A torch lenet5 and a scratch lenet5 holding the same weights."""
    torch.manual_seed(seed)
    reference = cnnlab.create("lenet5").to(dtype)
    model = scratch.lenet5(conv_method=conv_method).astype(np.float64 if dtype == torch.float64 else np.float32)
    model.load_state_dict({k: v.detach().numpy() for k, v in reference.state_dict().items()})
    return reference, model


def batch(n=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 1, 32, 32)), rng.integers(0, 10, n)


def test_the_engine_runs_every_model_without_importing_torch():
    code = ("import sys, numpy as np, cnnlab.scratch, cnnlab.scratch.gradcheck\n"
            "for name in cnnlab.scratch.MODELS:\n"
            "    m = cnnlab.scratch.build(name, in_channels=3)\n"
            "    size = 32 if name == 'lenet5' else 8\n"
            "    y = m(np.zeros((2, 3, size, size), np.float32)); m.backward(np.ones_like(y))\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_same_parameter_names_shapes_and_count_as_the_zoo():
    reference = cnnlab.create("lenet5")
    params = scratch.lenet5().parameters()
    assert {k: tuple(v.shape) for k, v in reference.state_dict().items()} == {k: p.data.shape for k, p in params.items()}
    assert sum(p.data.size for p in params.values()) == cnnlab.card("lenet5").params == 61_706


@pytest.mark.parametrize("conv_method", ["im2col", "naive"])
def test_same_logits_as_torch(conv_method):
    reference, model = twins(conv_method=conv_method)
    x, _ = batch()
    expected = reference(torch.tensor(x)).detach().numpy()
    assert np.abs(model(x) - expected).max() < 1e-10


def test_sgd_steps_give_the_same_weights_as_torch():
    """Three steps with momentum and weight decay: the velocity and decay conventions must agree."""
    reference, model = twins()
    lr, momentum, decay = 0.1, 0.9, 5e-4
    optimizer = scratch.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=decay)
    torch_optimizer = torch.optim.SGD(reference.parameters(), lr=lr, momentum=momentum, weight_decay=decay)
    for step in range(3):
        x, y = batch(seed=step)
        train_step(model, optimizer, x, y)
        torch_optimizer.zero_grad()
        F.cross_entropy(reference(torch.tensor(x)), torch.tensor(y)).backward()
        torch_optimizer.step()
    after = model.state_dict()
    for name, value in reference.state_dict().items():
        assert np.abs(after[name] - value.numpy()).max() < 1e-12, name
    assert any(np.abs(after[name] - twins()[1].state_dict()[name]).max() > 1e-3 for name in after)  # it did move


def test_loads_a_cnnlab_run_and_gives_its_logits(tmp_path):
    reference, _ = twins(torch.float32, seed=3)
    write_config(tmp_path, config_of("lenet5"))
    save_checkpoint(tmp_path / "checkpoints", "best", reference.state_dict(), {"epoch": 1})
    model = scratch.load_run(tmp_path)
    x, _ = batch()
    x = x.astype(np.float32)
    assert np.abs(model(x) - reference(torch.tensor(x)).detach().numpy()).max() < 1e-5


def test_npz_round_trip(tmp_path):
    _, model = twins()
    scratch.save(model, tmp_path / "lenet5.npz")
    restored = scratch.load(scratch.lenet5(seed=1).astype(np.float64), tmp_path / "lenet5.npz")
    x, _ = batch()
    assert np.array_equal(model(x), restored(x))


def test_mismatched_state_is_refused():
    _, model = twins()
    state = model.state_dict()
    with pytest.raises(KeyError, match="missing"):
        scratch.lenet5().load_state_dict({k: v for k, v in state.items() if k != "classifier.output.bias"})
    with pytest.raises(ValueError, match="shape"):
        scratch.lenet5(num_classes=5).load_state_dict(state)


def test_a_folder_without_checkpoint_is_a_user_error(tmp_path):
    write_config(tmp_path, config_of("lenet5"))
    with pytest.raises(CnnlabError, match="checkpoints"):
        scratch.load_run(tmp_path)
    write_config(tmp_path, config_of("alexnet"))
    with pytest.raises(CnnlabError, match="'alexnet', whose layers the scratch engine lacks; it builds: lenet5"):
        scratch.load_run(tmp_path)
