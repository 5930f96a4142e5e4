"""The papers' image-folder pipelines and the test-time views, checked on real images: the two
photographs scikit-learn ships (427×640) and CIFAR-10 test images, upscaled into an image folder."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_sample_images
from torchvision.transforms.v2 import functional as TF

from cnnlab.cli import main
from cnnlab.data import load_arrays
from cnnlab.data.loaders import build_loaders
from cnnlab.data.pipelines import folder_pipeline
from cnnlab.data.preprocess import load_image
from cnnlab.data.tta import BatchViews, FolderViews, ViewAverage
from cnnlab.errors import CnnlabError
from cnnlab.models import card, list_models
from cnnlab.training.settings import default_recipe, list_recipes, load_recipe

SEEDS = range(12)


@pytest.fixture(scope="module")
def photos() -> list[Image.Image]:
    return [Image.fromarray(image) for image in load_sample_images().images]


@pytest.fixture(scope="module")
def cifar_test(shared_data):
    images, labels, classes = load_arrays("cifar10", "test", shared_data)
    return images, labels, classes


@pytest.fixture(scope="module")
def real_images(photos, cifar_test) -> list[Image.Image]:
    """The two photographs and two CIFAR-10 test images upscaled 10× to 320×288 (a portrait and a landscape)."""
    images = cifar_test[0]
    upscaled = [Image.fromarray(images[i].transpose(1, 2, 0)).resize(size, Image.BICUBIC)
                for i, size in ((0, (288, 320)), (1, (320, 288)))]
    return photos + upscaled


def write_folder(root, images, labels, classes, size=None, per_class=(6, 3), kinds=3):
    """train/ and val/ of the first `kinds` classes, `per_class` images each, resized to `size` (W, H)."""
    for k in range(kinds):
        picked = np.flatnonzero(labels == k)[: sum(per_class)]
        for part, chosen in (("train", picked[: per_class[0]]), ("val", picked[per_class[0]:])):
            (root / part / classes[k]).mkdir(parents=True, exist_ok=True)
            for i in chosen:
                img = Image.fromarray(images[i].transpose(1, 2, 0))
                (img.resize(size, Image.BICUBIC) if size else img).save(root / part / classes[k] / f"{i}.png")
    return root


def pixels(image) -> np.ndarray:
    """H × W × C uint8 of a PIL image or of a C × H × W tensor."""
    return image.permute(1, 2, 0).numpy() if isinstance(image, torch.Tensor) else np.asarray(image)


def seeded(transform, image, seed):
    torch.manual_seed(seed)
    return transform(image)


def offset_in(crop: np.ndarray, big: np.ndarray) -> tuple[int, int] | None:
    """Where `crop` lies in `big` pixel for pixel (top-left corner), or None."""
    h, w = crop.shape[:2]
    patch = crop[:8, :8]
    for top in range(big.shape[0] - h + 1):
        for left in range(big.shape[1] - w + 1):
            if np.array_equal(big[top:top + 8, left:left + 8], patch) and np.array_equal(big[top:top + h, left:left + w], crop):
                return top, left
    return None


def shorter_side_then_centre(image, side: int, crop: int) -> np.ndarray:
    """Resize the shorter side to `side`, keep the central crop × crop: written with PIL alone."""
    w, h = image.size
    size = (side, int(side * h / w)) if w < h else (int(side * w / h), side)
    resized = image.resize(size, Image.BILINEAR)
    left, top = round((size[0] - crop) / 2), round((size[1] - crop) / 2)
    return np.asarray(resized.crop((left, top, left + crop, top + crop)))


def recipe_pipeline(name: str, size: int):
    return folder_pipeline(load_recipe(name)["augment"], (size, size))


# -- AlexNet -------------------------------------------------------------------------------------------

def test_alexnet_training_crops_are_227_patches_of_the_central_256(real_images):
    pipeline = recipe_pipeline("alexnet-paper", 227)
    for photo in real_images:
        centre = np.asarray(pipeline.eval_geometry[1](pipeline.eval_geometry[0](photo)))
        assert centre.shape == (256, 256, 3)
        assert np.array_equal(centre, shorter_side_then_centre(photo, 256, 256))  # the paper's 256×256
        places, flips = set(), 0
        for seed in SEEDS:
            crop = pixels(seeded(pipeline.train, photo, seed))
            assert crop.shape == (227, 227, 3)
            place = offset_in(crop, centre)
            if place is None:  # a mirrored patch: then its mirror lies in the centre
                place, flips = offset_in(crop[:, ::-1], centre), flips + 1
            assert place is not None and max(place) <= 256 - 227
            places.add(place)
        assert len(places) > len(SEEDS) // 2 and 0 < flips < len(SEEDS)  # random places, about half mirrored


def test_alexnet_evaluation_is_the_centre_of_the_central_256(real_images):
    pipeline = recipe_pipeline("alexnet-paper", 227)
    for photo in real_images:
        centre = np.asarray(pipeline.eval_geometry[1](pipeline.eval_geometry[0](photo)))
        assert np.array_equal(pixels(pipeline.evaluate(photo)), centre[14:241, 14:241])  # (256 - 227)/2 = 14.5 -> 14


# -- VGG and ResNet: scale jittering -------------------------------------------------------------------

@pytest.mark.parametrize("recipe, low, high, eval_side", [("vgg-paper", 256, 512, 384),
                                                          ("resnet-imagenet-paper", 256, 480, 256)])
def test_scale_jittering_draws_the_shorter_side_uniformly(real_images, recipe, low, high, eval_side):
    pipeline = recipe_pipeline(recipe, 224)
    jitter = pipeline.train.transforms[0]
    sides = [min(seeded(jitter, real_images[seed % 4], seed).size) for seed in range(300)]
    assert low <= min(sides) < low + 10 and high - 10 < max(sides) <= high
    assert np.mean(sides) == pytest.approx((low + high) / 2, abs=15)  # uniform: sd of the mean ~ 5
    assert len(set(sides)) > 100  # every integer side, not a few scales
    for seed in SEEDS:
        assert seeded(pipeline.train, real_images[seed % 4], seed).shape == (3, 224, 224)
    # evaluation at one fixed scale: VGG's Q = (S_min + S_max)/2 = 384; ResNet's 256 (eval:256)
    for image in real_images:
        assert np.array_equal(pixels(pipeline.evaluate(image)), shorter_side_then_centre(image, eval_side, 224))
    assert f"resize shorter side to {eval_side}" in pipeline.eval_steps[0]


# -- GoogLeNet -----------------------------------------------------------------------------------------

def test_googlenet_patches_cover_8_to_100_percent_with_aspect_3_4_to_4_3(photos):
    pipeline = recipe_pipeline("googlenet-paper", 224)
    area_crop, _, jitter = pipeline.train.transforms[:3]
    height, width = photos[0].size[1], photos[0].size[0]
    areas, aspects = [], []
    for seed in range(400):
        torch.manual_seed(seed)
        params = area_crop.make_params([photos[0]])
        areas.append(params["height"] * params["width"] / (height * width))
        aspects.append(params["width"] / params["height"])
    # the whole range is drawn; on a 640×427 photo an aspect of at most 4/3 caps the area at 569·427, 89%
    assert 0.08 <= min(areas) < 0.12 and 0.8 < max(areas) <= 569 * 427 / (640 * 427)
    assert 3 / 4 - 0.01 <= min(aspects) and max(aspects) <= 4 / 3 + 0.01
    # Howard's photometric distortion: brightness, contrast and saturation each scaled in [0.5, 1.5]
    assert (jitter.brightness, jitter.contrast, jitter.saturation, jitter.hue) == ((0.5, 1.5),) * 3 + (None,)
    means = [pixels(seeded(jitter, photos[1], seed)).mean() for seed in SEEDS]
    assert max(means) - min(means) > 10  # the photo's colours change from draw to draw
    assert seeded(pipeline.train, photos[1], 0).shape == (3, 224, 224)


# -- small image folders, PCA lighting, every recipe -----------------------------------------------

def test_a_folder_of_32x32_images_is_fed_untouched_to_a_32x32_model(tmp_path, cifar_test):
    images, labels, classes = cifar_test
    root = write_folder(tmp_path, images, labels, classes)
    data = build_loaders("imagefolder", (3, 32, 32), 9, data_dir=root, workers=0)
    x, _ = next(iter(data.test))
    first = np.array(Image.open(min((root / "val" / classes[0]).iterdir())))
    mean, std = torch.tensor(data.mean)[:, None, None], torch.tensor(data.std)[:, None, None]
    expected = (torch.from_numpy(first).permute(2, 0, 1) / 255 - mean) / std
    assert torch.allclose(x[0], expected, atol=1e-6)  # no 256/224 zoom, no crop
    # and a 28×28 folder for the same model is zero-padded by 2 pixels around, as MNIST for LeNet-5
    small = write_folder(tmp_path / "small", images, labels, classes, size=(28, 28))
    x, _ = next(iter(build_loaders("imagefolder", (3, 32, 32), 9, data_dir=small, workers=0).test))
    black = -mean / std
    assert torch.allclose(x[0, :, :2], black.expand(3, 2, 32)) and not torch.allclose(x[0, :, 2:4], black.expand(3, 2, 32))


def test_pca_lighting_shifts_each_image_by_one_colour(tmp_path, cifar_test):
    images, labels, classes = cifar_test
    root = write_folder(tmp_path, images, labels, classes, size=(96, 80))
    batches = []
    for augment in (("shorter:40", "crop"), ("shorter:40", "crop", "pca:0.1")):
        data = build_loaders("imagefolder", (3, 32, 32), 18, data_dir=root, augment=augment, workers=0, seed=3)
        batches.append(next(iter(data.train))[0])
    shift = batches[1] - batches[0]  # the same crops (same seeds): the difference is the lighting alone
    per_image = shift.mean((2, 3), keepdim=True)
    assert torch.allclose(shift, per_image.expand_as(shift), atol=1e-5)
    assert per_image.abs().max() > 1e-3 and per_image.std(0).min() > 0  # a different colour per image


def test_every_image_folder_recipe_builds_its_pipeline():
    folder_recipes = [name for name in list_recipes() if load_recipe(name)["dataset"] == "imagefolder"]
    assert {"alexnet-paper", "vgg-paper", "googlenet-paper", "resnet-imagenet-paper"} <= set(folder_recipes)
    for name in folder_recipes:
        model = list_models(load_recipe(name)["defaults_for"][0].split(":")[0])[0]  # e.g. alexnet for alexnet*
        pipeline = folder_pipeline(load_recipe(name)["augment"], card(model).input_shape[1:])
        assert pipeline.train_steps and pipeline.eval_steps
    assert default_recipe("zfnet", "imagefolder") == "zfnet-paper"
    assert default_recipe("densenet121", "imagefolder") == "fb-resnet-torch-imagenet"
    assert default_recipe("densenet_bc100_k12", "cifar10") == "densenet-cifar-paper"
    assert default_recipe("wrn28_10", "cifar10") == "wrn-cifar-paper"
    assert default_recipe("preact_resnet164", "cifar10") == "preact-resnet-cifar-paper"
    assert default_recipe("resnet20_deform", "cifar10") == "resnet-cifar-paper"


@pytest.mark.parametrize("specs, message", [
    (["crop", "area"], "crop and area both"),
    (["crop", "shorter:256"], "order shorter, centre, crop/area"),
    (["shorter:512-256"], "bad augmentation 'shorter:512-256'"),
    (["zoom:2"], "bad augmentation 'zoom:2'"),
    (["flip", "flip"], "given twice"),
])
def test_bad_image_folder_specs_are_one_line_errors(specs, message):
    with pytest.raises(CnnlabError, match=message):
        folder_pipeline(specs, (224, 224))


# -- test-time views ---------------------------------------------------------------------------------

def test_ten_crops_are_the_corners_and_centre_of_the_central_256_and_their_mirrors(photos):
    pipeline = recipe_pipeline("alexnet-paper", 227)
    views = FolderViews("10crop", (227, 227), pipeline.eval_geometry)(photos[0])
    assert views.shape == (10, 3, 227, 227) and views.dtype == torch.uint8
    centre = np.asarray(pipeline.eval_geometry[1](pipeline.eval_geometry[0](photos[0])))
    corners = [(0, 0), (0, 29), (29, 0), (29, 29), (14, 14)]  # top-left, top-right, bottom-left, bottom-right, centre
    patches = [centre[top:top + 227, left:left + 227] for top, left in corners]
    for index, patch in enumerate(patches):
        assert np.array_equal(pixels(views[index]), patch)
        assert np.array_equal(pixels(views[index + 5]), patch[:, ::-1])  # the exact mirror, even of the centre
    assert np.array_equal(pixels(views[4]), pixels(pipeline.evaluate(photos[0])))  # the centre view is eval's image


class Recording(torch.nn.Module):
    """Logits that depend on the view (its mean pixel), and the batch sizes it was called with."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor([1.0, -1.0, 0.5]))
        self.calls = []

    def forward(self, x):
        self.calls.append(len(x))
        return x.mean((1, 2, 3))[:, None] * self.scale


def test_view_average_averages_the_softmax_of_exactly_ten_views(photos):
    pipeline = recipe_pipeline("alexnet-paper", 227)
    views = torch.cat([FolderViews("10crop", (227, 227), pipeline.eval_geometry)(p) for p in photos]).float() / 255
    model = Recording()
    averaged = ViewAverage(model, 10)(views)
    assert model.calls == [20] and averaged.shape == (2, 3)
    logits = views.mean((1, 2, 3))[:, None] * model.scale
    expected = torch.softmax(logits, 1).view(2, 10, 3).mean(1)
    assert torch.allclose(averaged.exp(), expected)
    assert not torch.allclose(expected[0], torch.softmax(logits[0], 0))  # ten different views, not one


def test_googlenet_144_crops(photos):
    views = FolderViews("144crop", (224, 224), [])(photos[0])
    assert views.shape == (144, 3, 224, 224)
    # the sixth view of the first square is that square (the left 256×256 at scale 256) resized to 224
    square = TF.crop(TF.resize(photos[0], 256), 0, 0, 256, 256)
    assert np.array_equal(pixels(views[10]), np.asarray(TF.resize(square, [224, 224])))
    assert np.array_equal(pixels(views[11]), np.asarray(TF.resize(square, [224, 224]))[:, ::-1])
    assert len({view.numpy().tobytes() for view in views}) == 144  # 72 different crops and their 72 mirrors


def test_in_memory_ten_crops_come_from_the_image_padded_as_in_training(cifar_test):
    images, _, _ = cifar_test
    x = torch.from_numpy(images[:4]).float() / 255
    views = BatchViews("10crop", pad=4)(x).view(4, 10, 3, 32, 32)
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    assert torch.equal(views[:, 0], padded[:, :, :32, :32]) and torch.equal(views[:, 3], padded[:, :, 8:, 8:])
    assert torch.equal(views[:, 4], x) and torch.equal(views[:, 9], x.flip(3))  # the centre is the image itself
    assert torch.equal(BatchViews("flip")(x).view(4, 2, 3, 32, 32)[:, 1], x.flip(3))
    with pytest.raises(CnnlabError, match="trained without crop"):
        BatchViews("10crop", pad=0)
    with pytest.raises(CnnlabError, match="image folder"):
        BatchViews("144crop")


def test_eval_tta_is_recorded_in_the_result(tmp_path, cifar_test, capsys):
    images, labels, classes = cifar_test
    root = write_folder(tmp_path / "folder", images, labels, classes, size=(96, 80))
    run = tmp_path / "run"
    assert main(["train", "resnet20", "--dataset", "imagefolder", "--data-dir", str(root), "--epochs", "1",
                 "--batch-size", "9", "--augment", "crop", "flip", "--workers", "0", "--val-split", "0", "--quiet",
                 "--device", "cpu", "--out", str(run)]) == 0
    assert main(["eval", str(run), "--data-dir", str(root), "--device", "cpu"]) == 0
    for tta, views in (("flip", 2), ("10crop", 10)):
        assert main(["eval", str(run), "--data-dir", str(root), "--tta", tta, "--device", "cpu", "--batch-size", "20"]) == 0
        assert f"9 images, {views} views each ({tta})" in capsys.readouterr().out
        report = json.loads((run / f"eval-imagefolder-{tta}.json").read_text())
        assert (report["tta"], report["views"], report["images"]) == (tta, views, 9)
    plain = json.loads((run / "eval-imagefolder.json").read_text())
    assert (plain["tta"], plain["views"], plain["images"]) == (None, 1, 9)
    with pytest.raises(SystemExit):  # argparse refuses an unknown mode
        main(["eval", str(run), "--tta", "5crop"])


def test_predict_sees_a_photo_as_the_runs_evaluation_does(tmp_path, photos):
    photos[0].save(tmp_path / "china.png")
    specs = load_recipe("vgg-paper")["augment"]
    x = load_image(tmp_path / "china.png", (3, 224, 224), (0.0,) * 3, (1.0,) * 3, augment=specs)
    expected = folder_pipeline(specs, (224, 224)).evaluate(photos[0]).float() / 255
    assert torch.allclose(x[0], expected, atol=1e-6)


def test_eval_tta_on_an_in_memory_data_set_crops_as_the_run_trained(tmp_path, capsys):
    run = tmp_path / "lenet"  # the digits recipe trains with crop:2, so 10crop takes its crops from a 2-pixel pad
    assert main(["train", "lenet5", "--out", str(run), "--epochs", "1", "--quiet", "--device", "cpu"]) == 0
    assert main(["eval", str(run), "--tta", "10crop", "--device", "cpu"]) == 0
    report = json.loads((run / "eval-digits-10crop.json").read_text())
    assert (report["tta"], report["views"], report["images"]) == ("10crop", 10, 360)
    assert np.array(report["confusion"]).sum() == 360 and 0.1 < report["top1"] <= 1
    assert "360 images, 10 views each (10crop)" in capsys.readouterr().out
