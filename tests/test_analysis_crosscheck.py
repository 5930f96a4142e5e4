"""The abstract pass against a second method: real forward passes on small inputs on the CPU."""

import math

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import cnnlab
from cnnlab.analysis.analyze import _Subject
from cnnlab.analysis.fits import largest_batch, memory_at, parse_bytes
from cnnlab.analysis.measure import LiveTensorMemory, measure_training_step
from cnnlab.analysis.trace import trace
from cnnlab.models.probe import build_on_meta

SMALL = [("lenet5", (1, 32, 32)), ("resnet20", (3, 32, 32)), ("googlenet", (3, 64, 64)), ("alexnet", (3, 227, 227))]


def real_leaf_outputs(model, x):
    """Output shape (per image) of every leaf module call, from hooks on a real forward."""
    seen = {}
    names = {module: name for name, module in model.named_modules()}

    def record(module, inputs, output):
        seen.setdefault(names[module], tuple(output.shape[1:]))

    handles = [
        module.register_forward_hook(record)
        for module in model.modules()
        if next(module.children(), None) is None
    ]
    with torch.no_grad():
        model(x)
    for handle in handles:
        handle.remove()
    return seen


@pytest.mark.parametrize("name, shape", SMALL)
def test_shapes_params_and_macs_match_a_real_forward(name, shape):
    torch.manual_seed(0)
    model = cnnlab.create(name, guard=False).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = cnnlab.summary(model, shape)  # the nn.Module path: meta copies, the model untouched
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not model.training

    x = torch.randn(1, *shape)
    real = real_leaf_outputs(model, x)
    rows = {row.name: row for row in result.rows if not row.training_only}
    assert set(real) <= set(rows)
    assert {name: rows[name].output_shape for name in real} == real
    for module_name, module in model.named_modules():
        if module_name in real:
            assert rows[module_name].params == sum(p.numel() for p in module.parameters()), module_name

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    assert 2 * result.totals.macs == counter.get_total_flops()  # torch counts 2 FLOPs per MAC
    if name == "googlenet":  # the auxiliary heads' classifiers need 224×224: said, not hidden
        assert "training-mode pass fails" in result.notes[0]


def saved_for_backward(model, x):
    """Bytes autograd keeps for backward in a real training-mode forward, parameters excluded."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    storages = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in params:
            storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(x)
    return sum(storages.values())


@pytest.mark.parametrize("name, shape", [("lenet5", (1, 32, 32)), ("resnet20", (3, 32, 32)), ("alexnet", (3, 227, 227)),
                                         ("highway_fc", (1, 28, 28)),  # out-of-place ReLU, gates x·T
                                         ("lenet5_1998", (1, 32, 32)), ("inception", (256, 28, 28))])  # tanh; cat
def test_saved_activations_match_autograd_on_a_real_step(name, shape):
    torch.manual_seed(0)
    real = saved_for_backward(cnnlab.create(name, guard=False).train(), torch.randn(4, *shape))
    subject = _Subject(name)
    subject.model.train()
    abstract = trace(subject.model, torch.empty(4, *shape, device="meta")).saved_bytes
    # batch norm's per-channel statistics are the only tensors the abstract pass leaves out
    assert abstract["float"] + abstract["other"] == pytest.approx(real, rel=0.005)


def test_frozen_layers_need_no_gradients_or_optimizer_state():
    model = cnnlab.create("lenet5")
    for p in model.features.parameters():
        p.requires_grad_(False)
    frozen = sum(p.numel() for p in model.features.parameters())
    result = cnnlab.summary(model)
    assert result.totals.params_frozen == frozen == 156 + 2_416
    memory = result.totals.training_memory
    assert memory.weights == 4 * 61_706
    assert memory.gradients == memory.optimizer_state == 4 * (61_706 - frozen)
    adam = cnnlab.summary(model, optimizer="adam").totals.training_memory
    assert adam.optimizer_state == 2 * memory.optimizer_state
    assert {row.name: row.params_frozen for row in result.rows if row.params_frozen} == {
        "features.c1": 156, "features.c3": 2_416,
    }


def test_wrapped_models_are_analysed_as_the_model_inside():
    model = cnnlab.create("lenet5")
    wrapped = torch.nn.DataParallel(model)  # as DDP, it prefixes every name with "module."
    assert [row.name for row in cnnlab.summary(wrapped).rows] == [row.name for row in cnnlab.summary(model).rows]


@pytest.mark.parametrize("name, shape, batch", [("lenet5", (1, 32, 32), 16), ("resnet20", (3, 32, 32), 16),
                                                ("vgg_a", (3, 32, 32), 2)])
def test_training_memory_replay_matches_a_real_step(name, shape, batch):
    # Everything the estimate adds beyond weights and optimizer state (saved activations, parameter
    # gradients, activation gradients, freed as backward goes) against the tensors really alive.
    torch.manual_seed(0)
    model = cnnlab.create(name, guard=False).train()
    known = {t.untyped_storage().data_ptr() for t in [*model.parameters(), *model.buffers()]}
    x, y = torch.randn(batch, *shape), torch.randint(0, 10, (batch,))
    with LiveTensorMemory(known) as memory:
        torch.nn.functional.cross_entropy(model(x), y).backward()
    estimate = cnnlab.summary(name, shape, batch=batch).totals.training_memory
    assert estimate.total - estimate.weights - estimate.optimizer_state == pytest.approx(memory.peak, rel=0.1)


def _deformable_flops(input_shape, weight_shape, *rest, out_shape, **kwargs) -> int:
    """FlopCounterMode knows no formula for torchvision's deform_conv2d; a deformable convolution
    multiplies and adds as many products as a regular one (2 FLOPs each): out x C_in/groups x k x k."""
    return 2 * math.prod(out_shape) * math.prod(weight_shape[1:])


DEFORMABLE = {torch.ops.torchvision.deform_conv2d: _deformable_flops}


@pytest.mark.parametrize("name", cnnlab.list_models())
def test_macs_are_half_the_flops_torch_counts_on_meta(name):
    # torch's own FlopCounterMode counts 2 FLOPs per multiply-accumulate of convolutions and matrix
    # products (nothing else: no pooling, normalisation or additions, see docs/analysis.md). It works on
    # meta tensors, so every zoo model runs at its default input, in eval mode as the MACs total counts.
    model = build_on_meta(lambda: cnnlab.create(name, guard=False)).eval()
    result = cnnlab.summary(name)
    with FlopCounterMode(display=False, custom_mapping=DEFORMABLE) as counter, torch.no_grad():
        model(torch.empty(1, *result.input_shape, device="meta"))
    assert counter.get_total_flops() == 2 * result.totals.macs


@pytest.mark.parametrize("name, shape, budget", [("lenet5", (1, 32, 32), "16MiB"), ("resnet20", (3, 32, 32), "64MiB"),
                                                 ("nin_cifar", (3, 32, 32), "128MiB")])
def test_fits_answers_a_batch_whose_real_step_fits(name, shape, budget):
    result = cnnlab.summary(name, shape)
    limit = parse_bytes(budget)
    batch = largest_batch(result, limit, "fp32", "sgd")
    estimate = memory_at(result, batch, "fp32", "sgd")
    assert estimate.total <= limit < memory_at(result, batch + 1, "fp32", "sgd").total
    assert estimate.total == (estimate.weights + estimate.optimizer_state + estimate.peak_activations
                              + estimate.peak_gradients + estimate.peak_temporary)  # the parts add up
    torch.manual_seed(0)
    model = cnnlab.create(name, guard=False)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    real = measure_training_step(model, torch.randn(batch, *shape), torch.randint(0, 10, (batch,)), optimizer)
    assert real.resident == pytest.approx(estimate.weights + estimate.optimizer_state, rel=0.01)  # + BN buffers
    assert real.total == pytest.approx(estimate.total, rel=0.1)  # measured 0.94, 0.99, 1.02 (docs/analysis.md)
