"""Viz figures on zoo models and tiny hand-made models: the pictures' content is checked against
the weights, activations and gradients they claim to show."""

import argparse

import matplotlib.text
import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import cnnlab
from cnnlab.errors import CnnlabError
from cnnlab.viz.activations import feature_maps, plot_activations, plot_overlay
from cnnlab.viz.architecture import plot_architecture
from cnnlab.viz.cam import METHODS, class_maps, default_cam_layer, grad_cam, plot_cam
from cnnlab.viz.deconv import layer_stack, plot_deconv, projections
from cnnlab.viz.figure import tile_figure, tile_origin
from cnnlab.viz.sanity import FLAG_AT, randomisation_check, spearman, weighted_layers
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
    assert path.name == "image-activations-features.3.png" and min(png_size(path)) > 500


def test_feature_maps_refuse_a_vector_layer():
    subject = open_subject("lenet5")
    with pytest.raises(CnnlabError, match="not feature maps"):
        feature_maps(subject.model, torch.zeros(1, 1, 32, 32), ["f5"])


def test_default_cam_layer_follows_the_stated_rule_in_every_family():
    """The last map of at least 7x7: LeNet's C3 (10x10, not S4's 5x5), AlexNet's conv5 (13x13, not
    pool5's 6x6), VGG's features (7x7 at 224), ResNet's and GoogLeNet's last stage."""
    expected = {"lenet5": "features.relu3", "alexnet": "features.relu5", "vgg_a": "features",
                "alexnet_torchvision": "features.11", "nin_cifar": "features.mlpconv3", "resnet18": "layer4",
                "resnet20": "layer3", "googlenet": "inception5b"}
    for name, layer in expected.items():
        model = cnnlab.create(name).eval()
        assert default_cam_layer(model, cnnlab.card(name).input_shape) == layer, name
    resnet = cnnlab.create("resnet20").eval()
    assert default_cam_layer(resnet, (3, 12, 12)) == "layer1"  # 12x12; layer2's 6x6 and layer3's 3x3 are too coarse
    assert default_cam_layer(resnet, (3, 6, 6)) == "layer3"  # no map of 7x7: the last one larger than 1x1 (2x2)


def test_grad_cam_equals_pytorch_grad_cam():
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    torch.manual_seed(0)
    model = cnnlab.create("resnet20").eval()
    x = torch.randn(1, 3, 32, 32)
    ours = grad_cam(model, x, "layer3", [0, 3, 7])
    with GradCAM(model=model, target_layers=[model.layer3]) as cam:
        theirs = cam(input_tensor=x.repeat(3, 1, 1, 1), targets=[ClassifierOutputTarget(t) for t in (0, 3, 7)])
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    assert ours.max() > 0.99 and ours.shape == (3, 32, 32)


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


def figure_texts(monkeypatch, module):
    """Patch `module.save` to record every text drawn on the figures it saves."""
    drawn = []
    original = module.save

    def save(fig, path):
        drawn.append([t.get_text() for t in fig.findobj(matplotlib.text.Text)])
        return original(fig, path)

    monkeypatch.setattr(module, "save", save)
    return drawn


def test_cam_figure_lists_the_top5_with_a_colour_bar_and_accepts_a_target(tmp_path, monkeypatch):
    import cnnlab.viz.cam as cam_module

    texts = figure_texts(monkeypatch, cam_module)
    model = BrightSpotDetector().eval()
    subject = Subject(model, "spot", (1, 32, 32), (0.0,), (1.0,), ["dark", "bright"])
    x = torch.zeros(1, 1, 32, 32)
    x[0, 0, 4:9, 4:9] = 1.0
    path, maps, shown, check = plot_cam(subject, x, tmp_path, stem="spot")
    probs = torch.softmax(model(x), 1)[0].detach()
    assert [c for c, _ in shown] == [1, 0] and shown[0][1] == pytest.approx(float(probs[1]))
    assert path.name == "spot-gradcam-features.png"
    assert "map value (1 = its maximum)" in texts[-1]  # the colour bar's label
    assert "bright\np = " + f"{shown[0][1]:.2f}" in texts[-1]  # the class name over its map
    assert check is not None and len(check.cascade) == 2  # the conv and the linear read-out
    # class "dark" reads the detector with weight -1: nothing raises its score, and the figure says why
    assert maps[1].max() == 0 and any("EMPTY" in t for t in texts[-1])
    assert any("empty map (dark): the weighted sum of the features maps is ≤ 0 everywhere" in t for t in texts[-1])
    path, maps, shown, _ = plot_cam(subject, x, tmp_path, "gradcam++", target="bright", stem="spot", sanity=False)
    assert [c for c, _ in shown] == [1] and maps.shape == (1, 32, 32)
    assert path.name == "spot-gradcampp-features-class-bright.png"
    with pytest.raises(CnnlabError, match="unknown class"):
        plot_cam(subject, x, tmp_path, target="grey")


def edge_detector(model, x, layer, targets):
    """A saliency "method" built to fail the sanity check: the input's edges, whatever the model."""
    image = x[0].mean(0).numpy()
    edges = np.hypot(np.diff(image, axis=0, append=image[-1:]), np.diff(image, axis=1, append=image[:, -1:]))
    return np.stack([edges / (edges.max() or 1.0)] * len(targets))


def test_the_sanity_check_flags_a_method_that_ignores_the_weights(tmp_path, monkeypatch):
    import cnnlab.viz.cam as cam_module

    texts = figure_texts(monkeypatch, cam_module)
    torch.manual_seed(0)
    subject = open_subject("lenet5")
    x = torch.zeros(1, 1, 32, 32)
    x[0, 0, 8:24, 12:20] = 2.0
    path, _, _, check = plot_cam(subject, x, tmp_path, edge_detector, stem="bar")
    assert check.flagged and check.score == pytest.approx(1.0)
    assert check.cascade == tuple(weighted_layers(subject.model, (1, 32, 32))[::-1])
    assert check.cascade[0] == "classifier.output" and check.cascade[-1] == "features.c1"  # top first
    assert [len(step.layers) for step in check.steps] == [1, 2, 3, 4, 5]
    assert any(t.startswith("FLAGGED by the sanity check") for t in texts[-1])
    assert sum("random\nρ = 1.00" in t for t in texts[-1]) == 5  # every step's correlation is printed on the figure
    # Grad-CAM of the same (untrained) model changes as soon as the top layer is re-drawn
    _, _, _, grad = plot_cam(subject, x, tmp_path, stem="bar")
    assert not grad.flagged and grad.score < FLAG_AT
    assert all(p.data_ptr() != q.data_ptr() for p, q in zip(subject.model.parameters(),
                                                             open_subject("lenet5").model.parameters()))


def test_spearman_equals_scipys_on_real_maps_with_ties():
    """Grad-CAM-like maps: ReLU zeros (many ties), quantised values, and real CAMs' shapes."""
    from scipy.stats import spearmanr

    rng = np.random.default_rng(0)
    for shape in [(7, 7), (32, 32), (224, 224)]:
        a = np.maximum(rng.normal(size=shape), 0)  # half of the values tied at zero
        b = np.round(np.maximum(a + rng.normal(scale=0.5, size=shape), 0), 1)  # ties at many values
        assert spearman(a, b) == pytest.approx(spearmanr(a.ravel(), b.ravel()).statistic, abs=1e-12)


def test_spearman_is_undefined_only_for_a_constant_trained_map():
    a = np.arange(16.0).reshape(4, 4)
    assert spearman(a, a ** 3) == pytest.approx(1.0) and spearman(a, -a) == pytest.approx(-1.0)
    assert spearman(np.zeros((4, 4)), a) is None and spearman(a, np.zeros((4, 4))) == 0.0
    model = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    before = [p.detach().clone() for p in model.parameters()]
    check = randomisation_check(model, lambda m: m[1].weight.detach().numpy().copy(), ["1", "0"], seeds=2)
    assert [s.layers for s in check.steps] == [("1",), ("1", "0")]
    assert all(torch.equal(p, q) for p, q in zip(before, model.parameters()))  # the model itself is untouched


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
    path, results, _ = plot_deconv(subject, x, tmp_path, "conv5", count=4, sanity=False)
    assert len(results) == 4 and all(p.shape == (3, 227, 227) for _, _, p in results)
    peaks = [peak for _, peak, _ in results]
    assert peaks == sorted(peaks, reverse=True) and peaks[0] > 0
    # conv5's receptive field is 163 pixels wide: the projection is nonzero only inside it
    nonzero_columns = np.flatnonzero(np.abs(results[0][2]).sum((0, 1)))
    assert 0 < nonzero_columns[-1] - nonzero_columns[0] < 163
    with pytest.raises(CnnlabError, match="plain stack"):
        layer_stack(cnnlab.create("resnet18").eval(), (3, 224, 224), "layer2")


def test_architecture_boxes_follow_lenet5(tmp_path):
    [png, svg], graph = plot_architecture("lenet5", None, tmp_path / "a", formats=("png", "svg"))
    assert [n.name for n in graph.nodes] == ["input", "features.c1", "features.s2", "features.c3", "features.s4",
                                             "classifier.f5", "classifier.f6", "classifier.output"]
    assert [n.shape for n in graph.nodes] == ["1×32×32", "6×28×28", "6×14×14", "16×10×10", "16×5×5", "120 units",
                                              "84 units", "10 units"]
    assert [n.detail for n in graph.nodes[1:4]] == ["Conv2d 5×5 + ReLU", "MaxPool2d 2×2 /2", "Conv2d 5×5 + ReLU"]
    assert graph.node("classifier.f5").detail == "flatten + Linear + ReLU"
    assert [(e.source, e.target) for e in graph.edges] == list(zip([n.name for n in graph.nodes],
                                                                   [n.name for n in graph.nodes][1:]))
    assert png.suffix == ".png" and min(png_size(png)) > 300 and svg.read_text().count('id="node-') == 2 * 8


def test_cli_on_zoo_models_prints_paths_and_reports_user_errors(tmp_path, capsys):
    from cnnlab.cli import main

    out = str(tmp_path)
    assert main(["viz", "filters", "lenet5", "--input", "3x32x32", "--out", out]) == 0
    assert main(["viz", "architecture", "alexnet", "--out", out]) == 0
    assert capsys.readouterr().out.split() == [str(tmp_path / "filters-features.c1.png"), str(tmp_path / "architecture.png"),
                                               str(tmp_path / "architecture.svg")]
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
    assert path.name == "image-overlay-1.png"
    with pytest.raises(CnnlabError, match="no channel 3"):
        plot_overlay(subject, x, tmp_path, "1", channels=[3])


def viz_parsers():
    from cnnlab.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    figures = next(a for a in commands["viz"]._actions if a.dest == "figure").choices
    return {**{f"viz {name}": p for name, p in figures.items()}, "report": commands["report"]}


def test_viz_flags_share_names_keep_old_spellings_hidden_and_state_their_defaults():
    from cnnlab.cli import build_parser

    parsers = viz_parsers()
    for name, parser in parsers.items():
        text = parser.format_help()
        for hidden in ("--input-shape", "--max", "--layers"):
            assert hidden not in text, (name, hidden)
        for action in parser._actions:
            if not action.option_strings or action.help == argparse.SUPPRESS or action.dest == "help":
                continue
            assert action.help, (name, action.option_strings)
            assert "default" in action.help or "required" in action.help, (name, action.option_strings)
    parse = build_parser().parse_args
    old = parse(["viz", "activations", "lenet5", "x.png", "--input-shape", "1x40x40", "--max", "5", "--layers", "c1,c3"])
    new = parse(["viz", "activations", "lenet5", "x.png", "--input", "1x40x40", "--count", "5", "--layer", "c1",
                 "--layer", "c3"])
    assert (old.input, old.count, old.layers) == ("1x40x40", 5, "c1,c3")
    assert (new.input, new.count, new.layer) == ("1x40x40", 5, ["c1", "c3"])
    assert parse(["viz", "filters", "lenet5", "--max", "7"]).count == 7


def test_activations_take_repeated_layers_and_the_old_comma_list(tmp_path, capsys):
    from cnnlab.cli import main

    image = tmp_path / "bar.png"
    Image.fromarray(np.tile(np.linspace(0, 255, 32, dtype=np.uint8), (32, 1))).save(image)
    out = str(tmp_path / "f")
    assert main(["viz", "activations", "lenet5", str(image), "--layer", "c1", "--layer", "c3", "--out", out]) == 0
    assert main(["viz", "activations", "lenet5", str(image), "--layers", "c1,c3", "--out", out, "--force"]) == 0
    printed = capsys.readouterr().out.split()
    assert [p.split("/")[-1] for p in printed] == ["bar-activations-features.c1.png",
                                                   "bar-activations-features.c3.png"] * 2
