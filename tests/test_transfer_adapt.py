"""Input adaptation and the model anatomy transfer relies on: exact rules, checked numerically."""

import pytest
import torch
from torch import nn

import cnnlab
from cnnlab.errors import CnnlabError
from cnnlab.transfer.adapt import adapt_conv_weight
from cnnlab.transfer.anatomy import first_conv, head_keys, keys_from, require_layer
from cnnlab.transfer.features import embed
from cnnlab.transfer.finetune import target_model
from cnnlab.transfer.source import Source


def conv_with(weight):
    conv = nn.Conv2d(weight.shape[1], weight.shape[0], weight.shape[2], bias=False)
    conv.weight.data.copy_(weight)
    return conv


def test_colour_filters_summed_see_a_grey_image_as_its_three_channel_copy():
    torch.manual_seed(0)
    weight, grey = torch.randn(6, 3, 5, 5), torch.randn(4, 1, 12, 12)
    colour_out = conv_with(weight)(grey.repeat(1, 3, 1, 1))
    grey_out = conv_with(adapt_conv_weight(weight, 1))(grey)
    torch.testing.assert_close(grey_out, colour_out, rtol=1e-5, atol=1e-5)


def test_grey_filter_split_in_three_sees_the_channel_mean():
    torch.manual_seed(0)
    weight, colour = torch.randn(6, 1, 5, 5), torch.randn(4, 3, 12, 12)
    adapted = conv_with(adapt_conv_weight(weight, 3))
    torch.testing.assert_close(adapted(colour), conv_with(weight)(colour.mean(1, keepdim=True)), rtol=1e-5, atol=1e-5)
    grey = colour[:, :1]
    torch.testing.assert_close(adapted(grey.repeat(1, 3, 1, 1)), conv_with(weight)(grey), rtol=1e-5, atol=1e-5)


def test_other_channel_changes_have_no_rule():
    with pytest.raises(CnnlabError, match="only grey <-> colour"):
        adapt_conv_weight(torch.zeros(6, 3, 5, 5), 2)


def test_head_is_what_depends_on_the_class_count():
    assert head_keys("resnet18", {}) == ["fc.weight", "fc.bias"]
    assert head_keys("lenet5", {}) == ["classifier.output.weight", "classifier.output.bias"]
    assert head_keys("vgg_d", {}) == ["classifier.6.weight", "classifier.6.bias"]
    # NIN has no fully connected layer: its classifier is the last 1x1 convolution (10 maps, then GAP)
    assert head_keys("nin_cifar", {}) == ["features.mlpconv3.mlp2.weight", "features.mlpconv3.mlp2.bias"]
    assert cnnlab.create("nin_cifar").features.mlpconv3.mlp2.out_channels == 10


def test_layers_are_named_or_suggested():
    model = cnnlab.create("lenet5")
    assert first_conv(model)[0] == "features.c1"
    assert keys_from(model, "classifier.f6") == [
        "classifier.f6.weight", "classifier.f6.bias", "classifier.output.weight", "classifier.output.bias"]
    with pytest.raises(CnnlabError, match="did you mean features.c3"):
        require_layer(model, "feature.c3")


def test_resnet20_moved_to_grey_images_computes_what_it_computed_on_their_colour_copies():
    torch.manual_seed(0)
    colour = cnnlab.create("resnet20").eval()
    for module in colour.modules():  # non-trivial BN statistics, so the check covers them
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    source = Source(colour, "resnet20", {"num_classes": 10, "in_channels": 3}, (3, 32, 32))
    grey_model, kwargs, heads = target_model(source, num_classes=4, in_channels=1)
    assert kwargs == {"num_classes": 4, "in_channels": 1} and heads == ["fc.weight", "fc.bias"]
    grey = torch.randn(5, 1, 32, 32)
    batches = [(grey, torch.zeros(5))]
    ours, _ = embed(grey_model, "fc", batches, head_input=True)
    theirs, _ = embed(colour, "fc", [(grey.repeat(1, 3, 1, 1), torch.zeros(5))], head_input=True)
    assert ours.shape == (5, 64)
    torch.testing.assert_close(torch.from_numpy(ours), torch.from_numpy(theirs), rtol=1e-4, atol=1e-4)
