"""Viz figures on zoo models and tiny hand-made models: the pictures' content is checked against
the weights, activations and gradients they claim to show."""

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import cnnlab
from cnnlab.errors import CnnlabError
from cnnlab.viz.activations import feature_maps, plot_activations, plot_overlay
from cnnlab.viz.architecture import drawn_rows, fold_to_fit, plot_architecture
from cnnlab.viz.cam import METHODS, class_maps, default_cam_layer, plot_cam
from cnnlab.viz.deconv import layer_stack, plot_deconv, projections
from cnnlab.viz.figure import tile_figure, tile_origin
from cnnlab.viz.filters import plot_filters
from cnnlab.viz.subject import Subject, open_subject


def png_size(path):
    with Image.open(path) as image:
        image.load()
        return image.size


def test_tile_grid_places_every_tile_where_the_labels_say():
    tiles = np.arange(7 * 3 * 4, dtype=float).reshape(7, 3, 4)
    fig, grid, ncols = tile_figure(tiles, [f"t{i}" for i in range(7)], "t", ncols=3)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == [f"t{i}" for i in range(7)]
    gap = (grid.shape[1] - 3 * 4) // 2  # 3 columns of width 4 with 2 gaps
    strip = grid.shape[0] // 3 - 3 - gap  # 3 rows of cells (strip + 3 + gap)
    for i, tile in enumerate(tiles):
        top, left = tile_origin(i, ncols, (3, 4), gap, strip)
        np.testing.assert_array_equal(grid[top : top + 3, left : left + 4], tile)
    assert np.isnan(grid).sum() == grid.size - tiles.size  # everything else is blank


def test_colour_first_layer_shows_the_weights_jointly_normalised(tmp_path):
    subject = open_subject("lenet5", (3, 32, 32))
    conv = subject.model.features.c1
    weight = torch.randn_like(conv.weight)
    weight[2] = 0  # an all-zero kernel must come out mid grey
    weight[4, 1, 0, 0] = weight.abs().max() * 2  # the layer's largest |w| must reach exactly 1.0
    with torch.no_grad():
        conv.weight.copy_(weight)
    path, tiles = plot_filters(subject, tmp_path)
    w = weight.double().numpy()
    expected = np.moveaxis(0.5 + w / (2 * np.abs(w).max()), 1, -1)  # (6, 5, 5, 3): RGB tiles
    np.testing.assert_allclose(tiles, expected)
    assert np.all(tiles[2] == 0.5) and tiles[4, 0, 0, 1] == 1.0
    assert path.name == "filters-features.c1.png" and min(png_size(path)) > 200


def test_deeper_layer_is_drawn_channel_by_channel(tmp_path):
    subject = open_subject("lenet5")
    path, tiles = plot_filters(subject, tmp_path, "c3", max_filters=5)
    w = subject.model.features.c3.weight.detach().double().numpy()
    assert tiles.shape == (5 * 6, 5, 5)  # 5 filters x 6 input channels
    np.testing.assert_array_equal(tiles[3 * 6 + 4], w[3, 4])  # row 3 (filter), column 4 (input channel)
    with pytest.raises(CnnlabError, match="not a convolution"):
        plot_filters(subject, tmp_path, "s2")


def test_activation_grid_for_max_100_holds_the_first_100_channels(tmp_path):
    subject = open_subject("alexnet_torchvision", (3, 96, 96))  # any input size the model accepts
    x = torch.randn(1, 3, 96, 96)
    [(path, tiles)] = plot_activations(subject, x, tmp_path, ["features.3"], max_channels=100)
    expected = subject.model.features[:4](x.clone())[0, :100]  # conv2's output, 192 channels in all
    assert tiles.shape[0] == 100
    np.testing.assert_allclose(tiles, expected.detach().numpy(), rtol=1e-5, atol=1e-6)
    assert path.name == "activations-features.3.png" and min(png_size(path)) > 500


def test_feature_maps_refuse_a_vector_layer():
    subject = open_subject("lenet5")
    with pytest.raises(CnnlabError, match="not feature maps"):
        feature_maps(subject.model, torch.zeros(1, 1, 32, 32), ["f5"])


def test_default_cam_layer_per_family():
    expected = {"lenet5": "features", "alexnet": "features", "vgg_a": "features", "alexnet_torchvision": "features",
                "nin_cifar": "features.mlpconv3", "resnet18": "layer4", "resnet20": "layer3"}
    for name, layer in expected.items():
        model = cnnlab.create(name).eval()
        assert default_cam_layer(model, cnnlab.card(name).input_shape) == layer, name


class BrightSpotDetector(nn.Module):
    """Class 1 = "there is a bright spot", class 0 = its opposite: a 3x3 averaging detector, ReLU,
    global average pooling and a fixed linear read-out."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1, bias=False), nn.ReLU())
        self.classifier = nn.Linear(1, 2)
        with torch.no_grad():
            self.features[0].weight.fill_(1 / 9)
            self.classifier.weight.copy_(torch.tensor([[-1.0], [1.0]]))
            self.classifier.bias.zero_()

    def forward(self, x):
        return self.classifier(self.features(x).mean((2, 3)))


@pytest.mark.parametrize("method", METHODS)
def test_cam_peaks_on_the_planted_class_evidence(method):
    model = BrightSpotDetector().eval()
    x = torch.zeros(1, 1, 32, 32)
    x[0, 0, 20:26, 5:11] = 1.0  # the evidence for class 1
    x[0, 0, 3, 25] = 0.3  # a faint distractor elsewhere
    [cam] = class_maps(model, x, "features", [1], method)
    row, col = np.unravel_index(cam.argmax(), cam.shape)
    assert 20 <= row < 26 and 5 <= col < 11
    assert cam[:12].max() < 0.5 * cam.max()  # the top of the image is cold


def test_cam_figure_lists_the_top5_and_accepts_a_target(tmp_path):
    model = BrightSpotDetector().eval()
    subject = Subject(model, "spot", (1, 32, 32), (0.0,), (1.0,), ["dark", "bright"])
    x = torch.zeros(1, 1, 32, 32)
    x[0, 0, 4:9, 4:9] = 1.0
    path, maps, shown = plot_cam(subject, x, tmp_path)
    probs = torch.softmax(model(x), 1)[0].detach()
    assert [c for c, _ in shown] == [1, 0] and shown[0][1] == pytest.approx(float(probs[1]))
    path, maps, shown = plot_cam(subject, x, tmp_path, "gradcam++", target="dark")
    assert [c for c, _ in shown] == [0] and maps.shape == (1, 32, 32) and path.name == "cam-gradcampp.png"
    with pytest.raises(CnnlabError, match="unknown class"):
        plot_cam(subject, x, tmp_path, target="grey")


def test_deconv_equals_the_gradient_when_the_stack_has_no_relu():
    """Without ReLUs the deconvnet is linear: unpooling with switches and transposed convolution
    are exactly backpropagation, so the projection of activation a is a * d(activation)/d(input)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.MaxPool2d(2), nn.Conv2d(4, 5, 3, stride=2),
                          nn.LocalResponseNorm(3)).eval()
    model[3] = nn.Identity()  # pass-through layers are skipped by the projection and by this check
    x = torch.randn(1, 3, 20, 20, requires_grad=True)
    [(channel, peak, projection)] = projections(model, x.detach(), (3, 20, 20), "2", count=1)
    out = model[:3](x)[0, channel]
    out.flatten().max().backward()
    np.testing.assert_allclose(projection, peak * x.grad[0].numpy(), rtol=1e-4, atol=1e-6)


def test_deconv_on_alexnet_projects_to_pixel_space(tmp_path):
    subject = open_subject("alexnet")
    x = torch.randn(1, 3, 227, 227)
    path, results = plot_deconv(subject, x, tmp_path, "conv5", count=4)
    assert len(results) == 4 and all(p.shape == (3, 227, 227) for _, _, p in results)
    peaks = [peak for _, peak, _ in results]
    assert peaks == sorted(peaks, reverse=True) and peaks[0] > 0
    # conv5's receptive field is 163 pixels wide: the projection is nonzero only inside it
    nonzero_columns = np.flatnonzero(np.abs(results[0][2]).sum((0, 1)))
    assert 0 < nonzero_columns[-1] - nonzero_columns[0] < 163
    with pytest.raises(CnnlabError, match="plain stack"):
        layer_stack(cnnlab.create("resnet18").eval(), (3, 224, 224), "layer2")


def test_architecture_rows_follow_lenet5_and_fold_resnet(tmp_path):
    path, rows = plot_architecture("lenet5", None, tmp_path / "a.png")
    assert [r.name for r in rows] == ["features.c1", "features.s2", "features.c3", "features.s4", "classifier.f5",
                                      "classifier.f6", "classifier.output"]
    assert [tuple(r.output_shape) for r in rows] == [(6, 28, 28), (6, 14, 14), (16, 10, 10), (16, 5, 5), (120,),
                                                     (84,), (10,)]
    from cnnlab.analysis import summary

    folded = drawn_rows(fold_to_fit(summary("resnet50", (3, 224, 224))).rows)
    assert len(folded) <= 40
    assert sum(r.type == "Bottleneck" for r in folded) == 3 + 4 + 6 + 3  # the paper's stage sizes
    assert min(png_size(path)) > 300


def test_cli_on_zoo_models_prints_paths_and_reports_user_errors(tmp_path, capsys):
    from cnnlab.cli import main

    out = str(tmp_path)
    assert main(["viz", "filters", "lenet5", "--input-shape", "3x32x32", "--out", out]) == 0
    assert main(["viz", "architecture", "alexnet", "--out", out]) == 0
    assert capsys.readouterr().out.split() == [str(tmp_path / "filters-features.c1.png"), str(tmp_path / "architecture.png")]
    assert main(["viz", "filters", "lenet5", "--layer", "c9"]) == 2
    assert "convolution layers: features.c1, features.c3" in capsys.readouterr().err
    assert main(["viz", "confusion", "lenet5"]) == 2  # needs a run
    assert main(["viz", "cam", "lenet5", str(tmp_path / "missing.png")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_overlay_lays_the_response_where_the_input_causes_it(tmp_path):
    model = nn.Sequential(BrightSpotDetector().features, nn.MaxPool2d(4), nn.Flatten()).eval()
    subject = Subject(model, "spot", (1, 32, 32), (0.0,), (1.0,), [str(k) for k in range(64)])
    x = torch.zeros(1, 1, 32, 32)
    x[0, 0, 24:30, 2:8] = 1.0
    path, heat = plot_overlay(subject, x, tmp_path, "1", channels=[0])  # the 8x8 pooled map
    assert heat.shape == (1, 32, 32)  # upsampled to the image
    row, col = np.unravel_index(heat[0].argmax(), heat[0].shape)
    assert 22 <= row < 32 and 0 <= col < 10
    assert heat[0, :16].max() == 0  # nothing responds in the top half
    assert path.name == "overlay-1.png"
    with pytest.raises(CnnlabError, match="no channel 3"):
        plot_overlay(subject, x, tmp_path, "1", channels=[3])
