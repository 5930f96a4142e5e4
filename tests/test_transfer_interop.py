"""Conversion to and from torchvision, and loading weights files as a transfer SOURCE."""

import pytest
import torch
import torchvision
from safetensors.torch import save_file

import cnnlab
from cnnlab.errors import CnnlabError
from cnnlab.transfer.interop import TORCHVISION_NAMES, match_architecture
from cnnlab.transfer.source import load_source


@pytest.mark.parametrize("zoo_name", list(TORCHVISION_NAMES))
def test_every_compatible_architecture_is_recognised_from_torchvision_weights(zoo_name):
    with torch.device("meta"):  # shapes only: no memory, no time
        theirs = torchvision.models.get_model(TORCHVISION_NAMES[zoo_name], weights=None, num_classes=13, init_weights=False) \
            if zoo_name.startswith(("vgg", "googlenet")) else torchvision.models.get_model(TORCHVISION_NAMES[zoo_name], num_classes=13)
    name, kwargs = match_architecture(theirs.state_dict())
    assert name == zoo_name and kwargs["num_classes"] == 13


def test_resnet18_round_trip_gives_identical_outputs():
    torch.manual_seed(0)
    theirs = torchvision.models.resnet18(num_classes=7).eval()
    for module in theirs.modules():  # BN statistics other than the defaults must travel too
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 1.5)
    ours = cnnlab.from_torchvision(theirs)
    assert ours.card.name == "resnet18" and not ours.training
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(ours(x), theirs(x))
        back = cnnlab.to_torchvision(ours)
        assert type(back) is torchvision.models.ResNet
        assert torch.equal(back(x), theirs(x))


def test_googlenet_with_auxiliary_heads_converts_both_ways():
    torch.manual_seed(0)
    theirs = torchvision.models.googlenet(num_classes=5, aux_logits=True, init_weights=False, transform_input=False).eval()
    ours = cnnlab.from_torchvision(theirs)
    assert ours.card.name == "googlenet_torchvision" and ours.aux_logits
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        assert torch.equal(ours(x), theirs(x))
        assert torch.equal(cnnlab.to_torchvision(ours)(x), theirs(x))


def test_input_renormalising_googlenet_is_refused():
    theirs = torchvision.models.googlenet(num_classes=5, aux_logits=False, init_weights=False, transform_input=True)
    with pytest.raises(CnnlabError, match="transform_input"):
        cnnlab.from_torchvision(theirs)


def test_models_without_a_torchvision_twin_say_which_have_one():
    with pytest.raises(CnnlabError, match="lenet5 has no torchvision twin.*resnet18"):
        cnnlab.to_torchvision(cnnlab.create("lenet5"))


def test_a_torchvision_checkpoint_file_is_a_source(tmp_path):
    torch.manual_seed(0)
    theirs = torchvision.models.resnet18(num_classes=3).eval()
    path = tmp_path / "resnet18-3.pth"
    torch.save({"state_dict": theirs.state_dict(), "epoch": 4}, path)  # a common training-script wrapper
    source = load_source(str(path))
    assert (source.name, source.kwargs, source.input_shape) == ("resnet18", {"num_classes": 3}, (3, 224, 224))
    assert source.record["kind"] == "file" and len(source.record["sha256"]) == 64
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(source.model(x), theirs(x))


class NotWeights:
    """A pickled object: loading it would run code, so weights_only must refuse it."""


def test_checkpoints_that_need_unpickling_code_are_refused(tmp_path):
    path = tmp_path / "hostile.pt"
    torch.save({"state_dict": NotWeights()}, path)
    with pytest.raises(CnnlabError, match="weights_only=True"):
        load_source(str(path))


def test_bare_safetensors_needs_a_model_that_fits(tmp_path):
    weights = cnnlab.create("lenet5", num_classes=4).state_dict()
    path = tmp_path / "lenet.safetensors"
    save_file(weights, str(path))
    with pytest.raises(CnnlabError, match="match none of the zoo models.*--model"):
        load_source(str(path))
    source = load_source(str(path), model="lenet5")
    assert source.kwargs == {"num_classes": 4} and source.input_shape == (1, 32, 32)
    with pytest.raises(CnnlabError, match="match none of the zoo models nin_cifar"):
        load_source(str(path), model="nin_cifar")
    colour = tmp_path / "lenet-rgb.safetensors"
    save_file(cnnlab.create("lenet5", num_classes=4, in_channels=3).state_dict(), str(colour))
    source = load_source(str(colour), model="lenet5")  # the channel count is read from C1's weights
    assert source.kwargs == {"num_classes": 4, "in_channels": 3} and source.input_shape == (3, 32, 32)
    with pytest.raises(CnnlabError, match="neither a run folder nor a weights file"):
        load_source(str(tmp_path / "missing.safetensors"))
