"""The classic half of the zoo (LeNet, AlexNet, VGG, NIN) against the numbers in their papers."""

import pytest
import torch

import cnnlab
from cnnlab.models.lenet import C3_CONNECTIONS, rbf_codes


def trainable(model) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("name, expected", [("lenet5", 61_706), ("lenet5_1998", 60_000)])
def test_lenet_parameter_counts(name, expected):
    assert trainable(cnnlab.create(name)) == expected


def test_lenet1998_c3_follows_table_1_of_the_paper():
    # Table I: 6 maps read 3 contiguous S2 maps, 6 read 4 contiguous, 3 read 4 non-contiguous, 1 reads all
    assert [len(c) for c in C3_CONNECTIONS] == [3] * 6 + [4] * 9 + [6]
    # every S2 map feeds exactly 10 C3 maps (count the X's per row of Table I)
    assert [sum(i in c for c in C3_CONNECTIONS) for i in range(6)] == [10] * 6
    c3 = cnnlab.create("lenet5_1998").features.c3
    assert trainable(c3) == 1_516  # paper: "C3 has 1,516 trainable parameters"


def test_lenet1998_c3_output_map_sees_only_its_table_inputs():
    c3 = cnnlab.create("lenet5_1998").features.c3
    x = torch.randn(1, 6, 14, 14, requires_grad=True)
    for j, inputs in enumerate(C3_CONNECTIONS):
        (grad,) = torch.autograd.grad(c3(x)[0, j].sum(), x)
        touched = {i for i in range(6) if grad[0, i].abs().sum() > 0}
        assert touched == set(inputs), f"C3 map {j}"


def test_lenet1998_subsampling_is_sum_times_coefficient_plus_bias():
    s2 = cnnlab.create("lenet5_1998").features.s2
    x = torch.randn(1, 6, 4, 4)
    expected = x[:, :, :2, :2].sum((2, 3)) * s2.weight + s2.bias
    torch.testing.assert_close(s2(x)[:, :, 0, 0], expected.detach())


def test_lenet1998_scaled_tanh_maps_plus_minus_one_to_itself():
    squash = cnnlab.create("lenet5_1998").features.squash1
    torch.testing.assert_close(squash(torch.tensor([1.0, -1.0, 0.0])), torch.tensor([1.0, -1.0, 0.0]), atol=1e-4, rtol=0)


def test_lenet1998_rbf_codes_are_distinct_fixed_plus_minus_one_bitmaps():
    codes = rbf_codes(10)
    assert codes.shape == (10, 84) and set(codes.unique().tolist()) == {-1.0, 1.0}
    hamming = (codes[:, None] != codes[None]).sum(-1) + torch.eye(10, dtype=torch.long) * 84
    assert hamming.min() >= 7  # hand-drawn digits: closest pair (6, 8) differs in 7 pixels
    assert torch.equal(rbf_codes(26), rbf_codes(26))  # other class counts: seeded, repeatable
    model = cnnlab.create("lenet5_1998")
    assert not any(p.requires_grad for n, p in model.named_buffers())
    assert "classifier.output.codes" in model.state_dict()


def test_lenet1998_output_is_negative_squared_distance_to_codes():
    model = cnnlab.create("lenet5_1998").eval()
    f6 = torch.randn(3, 84)
    scores = model.classifier.output(f6)
    expected = -torch.cdist(f6, rbf_codes(10)) ** 2
    torch.testing.assert_close(scores, expected, rtol=1e-4, atol=1e-4)
    # the code itself is the best-scoring input for its own class
    assert model.classifier.output(rbf_codes(10)).argmax(1).tolist() == list(range(10))


def test_lenet1998_init_is_uniform_within_2_4_over_fan_in():
    model = cnnlab.create("lenet5_1998")
    for module, fan_in in [(model.features.c1, 25), (model.features.c5, 400), (model.classifier.f6, 120), (model.features.s2, 4)]:
        assert module.weight.abs().max() <= 2.4 / fan_in
        assert module.weight.abs().max() > 0.5 * 2.4 / fan_in
