"""The report and the run-level figures, on a LeNet-5 really trained on the digits data set (a
few seconds on CPU) by cnnlab's own trainer, so they read the run directory contract as written."""

import base64
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnlab.cli import main
from cnnlab.run import read_metrics
from cnnlab.viz import write_report
from cnnlab.viz.confusion import plot_confusion, plot_mistakes
from cnnlab.viz.curves import plot_curves
from cnnlab.viz.predictions import predict_test_set
from cnnlab.viz.subject import open_subject

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("viz") / "lenet5-digits"
    assert main(["train", "lenet5", "--epochs", "3", "--batch-size", "64", "--lr", "0.05", "--val-split", "200",
                 "--out", str(out), "--device", "cpu", "--quiet"]) == 0  # train, summary, report
    return out


@pytest.fixture(scope="module")
def test_set(run):
    return predict_test_set(open_subject(run))


def test_confusion_matrix_matches_cnnlab_eval(run, test_set, tmp_path):
    from cnnlab.training.evaluation import evaluate_run

    report, _ = evaluate_run(run)
    path, counts = plot_confusion(open_subject(run), test_set.predictions, tmp_path)
    np.testing.assert_array_equal(counts, np.asarray(report["confusion"]))
    assert counts.sum() == 360  # the digits test split
    assert path.is_file()


def test_mistakes_are_the_most_confident_wrong_predictions(run, test_set, tmp_path):
    path, chosen = plot_mistakes(open_subject(run), test_set, tmp_path, count=8)
    predictions = test_set.predictions
    wrong = np.flatnonzero(predictions.predicted != predictions.labels)
    assert len(wrong) == 360 - np.trace(predictions.confusion(10))
    assert len(chosen) == min(8, len(wrong)) and set(chosen) <= set(wrong)
    confidence = predictions.probs[chosen].max(1)
    assert np.all(np.diff(confidence) <= 0)
    assert confidence[0] == predictions.probs[wrong].max(1).max()


def test_stored_predictions_are_the_final_epochs_and_match_a_fresh_pass(run):
    """The trainer's final evaluation is stored, so the report need not run the test set again;
    it is what the final weights (checkpoint last) predict."""
    from cnnlab.run.predictions import load_predictions

    stored = load_predictions(run)
    fresh = predict_test_set(open_subject(run, which="last")).predictions
    assert stored.epoch == 3 and len(stored.labels) == 360
    np.testing.assert_array_equal(stored.labels, fresh.labels)
    np.testing.assert_array_equal(stored.top, fresh.top)
    np.testing.assert_allclose(stored.probs, fresh.probs, rtol=1e-5, atol=1e-6)
    test_record = [r for r in read_metrics(run) if r["split"] == "test"][-1]
    assert np.mean(stored.predicted == stored.labels) == pytest.approx(test_record["top1"])


def test_curves_draw_every_run_from_its_metrics(run, tmp_path):
    other = tmp_path / "shorter"
    shutil.copytree(run, other)
    records = read_metrics(run)
    (other / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records if r["epoch"] <= 2))
    path, drawn = plot_curves([run, other], tmp_path / "curves.png")
    assert list(drawn) == [run.name, "shorter"]
    val = [r for r in records if r["split"] == "val"]
    epochs, errors = drawn[run.name][("val", "top1")]
    np.testing.assert_array_equal(epochs, [1, 2, 3])
    np.testing.assert_allclose(errors, [100 * (1 - r["top1"]) for r in val])
    assert drawn["shorter"][("train", "loss")][0].tolist() == [1, 2]
    assert ("val", "lr") not in drawn[run.name]  # the learning rate is the optimizer's, drawn once


def test_cli_prints_the_figure_paths_named_after_each_image(run, tmp_path, capsys):
    image, other = tmp_path / "digit.png", tmp_path / "other.png"
    Image.fromarray((np.eye(8)[::-1] * 255).astype(np.uint8)).save(image)
    Image.fromarray((np.eye(8) * 255).astype(np.uint8)).save(other)
    out = tmp_path / "figures"
    assert main(["viz", "activations", str(run), str(image), "--layer", "c1", "--layer", "c3", "--out", str(out)]) == 0
    assert main(["viz", "cam", str(run), str(image), "--method", "scorecam", "--out", str(out)]) == 0
    first = capsys.readouterr()
    assert "CAM layer features.relu3: the last feature map of at least 7×7" in first.err
    assert main(["viz", "cam", str(run), str(other), "--method", "scorecam", "--out", str(out)]) == 0
    assert main(["viz", "overlay", str(run), str(image), "--layer", "c3", "--channels", "0,5", "--out", str(out)]) == 0
    assert main(["viz", "deconv", str(run), str(image), "--layer", "c3", "--count", "4", "--out", str(out)]) == 0
    assert main(["viz", "curves", str(run), str(run), "--out", str(out)]) == 0
    printed = first.out.split() + capsys.readouterr().out.split()
    assert [Path(p).name for p in printed] == ["digit-activations-features.c1.png", "digit-activations-features.c3.png",
                                               "digit-scorecam-features.relu3.png", "other-scorecam-features.relu3.png",
                                               "digit-overlay-features.c3.png", "digit-deconv-features.c3.png",
                                               f"curves-{run.name}-vs-{run.name}.png"]
    assert all(Path(p).is_file() for p in printed)  # the second image's CAM did not replace the first one's
    assert main(["viz", "overlay", str(run), str(image), "--layer", "c3", "--channels", "16"]) == 2
    assert "no channel 16" in capsys.readouterr().err


def test_grad_cam_of_the_trained_model_passes_the_sanity_check(run, test_set):
    """On the trained digits LeNet-5 the Grad-CAM map falls apart when the weights are randomised:
    for one correctly classified image of each class, the mean rank correlation along the cascade
    stays below FLAG_AT (benchmarks/viz.py, 58 test images: 0.06 on average, at most 0.31)."""
    from cnnlab.viz.cam import cam_check, default_cam_layer
    from cnnlab.viz.deconv import deconv_check
    from cnnlab.viz.sanity import FLAG_AT

    subject = open_subject(run, which="last")
    layer = default_cam_layer(subject.model, subject.input_shape)
    predictions = test_set.predictions
    right = predictions.predicted == predictions.labels
    scores = []
    for k in range(10):
        i = int(np.flatnonzero(right & (predictions.labels == k))[0])
        check = cam_check(subject.model, subject.adapt(test_set.images[i:i + 1]), layer, k, "gradcam",
                          subject.input_shape)
        assert len(check.steps) == 5 and all(step.rho is not None for step in check.steps)
        scores.append(check.score)
    assert max(scores) < FLAG_AT and np.mean(scores) < 0.25, scores
    deconv = deconv_check(subject.model, subject.adapt(test_set.images[:1]), subject.input_shape, "features.c3")
    assert deconv.cascade == ("features.c3", "features.c1") and deconv.score is not None


def test_a_digit_drawn_black_on_white_is_flagged_and_inverted_back(run, test_set, tmp_path, capsys):
    predictions = test_set.predictions
    confident = np.flatnonzero((predictions.predicted == predictions.labels) & (predictions.confidence > 0.9))
    i = int(confident[0])
    digit = test_set.images[i, 0]
    drawn = tmp_path / "drawn.png"  # as anyone draws one: dark ink on white paper, at 64 x 64
    Image.fromarray(255 - digit).resize((64, 64), Image.NEAREST).save(drawn)
    truth = str(predictions.labels[i])
    assert main(["predict", str(run), str(drawn), "--device", "cpu", "--show-input"]) == 0
    captured = capsys.readouterr()
    assert "drawn.png is much brighter than the training images" in captured.err and "try --invert" in captured.err
    figure = run / "figures" / "drawn-input.png"
    assert f"input as the model sees it: {figure}" in captured.out and figure.is_file()
    assert main(["predict", str(run), str(drawn), "--device", "cpu", "--invert"]) == 0
    captured = capsys.readouterr()
    assert "warning" not in captured.err
    assert captured.out.splitlines()[1].split()[:2] == ["1.", truth]  # right once inverted
    assert main(["viz", "cam", str(run), str(drawn), "--out", str(tmp_path / "f"), "--show-input"]) == 0
    captured = capsys.readouterr()
    assert "try --invert" in captured.err and "drawn-input.png" in captured.out


def test_a_one_epoch_run_draws_its_curves_as_points(run, tmp_path):
    import matplotlib.pyplot as plt

    one = tmp_path / "one-epoch"
    shutil.copytree(run, one)
    records = read_metrics(run)
    (one / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records if r["epoch"] == 1))
    shown = []
    original = plt.close
    try:
        plt.close = lambda fig=None: (shown.append([line for ax in fig.axes for line in ax.lines]), original(fig))
        plot_curves([one], tmp_path / "one.png")
    finally:
        plt.close = original
    lines = shown[0]
    assert lines and all(len(line.get_xdata()) == 1 and line.get_marker() == "o" for line in lines)


def images_of(html: str) -> list[bytes]:
    return [base64.b64decode(data) for data in re.findall(r'src="data:image/png;base64,([^"]+)"', html)]


PROBE = """<script>
window.__errors = [];
window.addEventListener("error", e => window.__errors.push(String(e.message || e.target.src || e.type)), true);
window.addEventListener("load", () => {
  const broken = [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).length;
  document.body.setAttribute("data-probe", JSON.stringify(
    {images: document.images.length, broken: broken, errors: window.__errors}));
});
</script>"""


def chromium(*args, cwd):
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--no-first-run", f"--user-data-dir={cwd / 'profile'}"]
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=120, cwd=cwd)


def require_chromium():
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (apt-get install chromium)")
        pytest.skip("chromium is not installed")


WIDTH = 1280  # the page must fit a 1280-pixel window without horizontal scrolling

OVERFLOW = """<script>
window.addEventListener("load", () => {
  const wide = [...document.querySelectorAll("*")].filter(e => e.scrollWidth > e.clientWidth + 1
      && ["auto", "scroll"].includes(getComputedStyle(e).overflowX)).map(e => e.tagName);
  document.body.setAttribute("data-overflow", JSON.stringify(
    {page: document.documentElement.scrollWidth, view: document.documentElement.clientWidth,
     window: window.innerWidth, scrolling: wide}));
});
</script>"""


def page_width(html: str, tmp_path, name: str) -> dict:
    """The page's width, the visible width (the window less a vertical scrollbar), the window's and
    the elements that scroll sideways, read from Chromium at WIDTH."""
    page = tmp_path / f"{name}.html"
    page.write_text(html.replace("</body>", OVERFLOW + "</body>"))
    result = chromium("--dump-dom", "--virtual-time-budget=10000", f"--window-size={WIDTH},900", page.as_uri(),
                      cwd=tmp_path)
    return json.loads(re.search(r'data-overflow="([^"]*)"', result.stdout).group(1).replace("&quot;", '"'))


def horizontal_scrollbar(screenshot: Path) -> bool:
    """Whether a screenshot shows a horizontal scrollbar's thumb: a long run of mid-grey pixels in
    the bottom strip of the window (left of where the vertical scrollbar is)."""
    with Image.open(screenshot) as image:
        strip = np.asarray(image.convert("RGB"), dtype=int)[-16:, :-20]
    grey = (np.ptp(strip, axis=2) < 8) & (strip[..., 0] > 90) & (strip[..., 0] < 200)
    runs = [max((len(r) for r in "".join("x" if g else " " for g in row).split()), default=0) for row in grey]
    return max(runs) > 100


def test_report_is_self_contained_fits_1280_pixels_and_loads_in_chromium(run, tmp_path):
    path = write_report(run, force=True)
    assert path == run / "report.html"
    html = path.read_text()
    for section in ("Final metrics", "Training curves", "Architecture", "Confusion matrix", "Misclassified",
                    "First-layer filters", "class activation maps", "Configuration"):
        assert section in html
    assert "Not drawn" not in html
    assert not re.search(r'(src|href)="(https?:)?//', html)  # nothing fetched from the network
    pictures = images_of(html)
    assert len(pictures) >= 9
    for data in pictures:
        with Image.open(__import__("io").BytesIO(data)) as image:
            image.load()
            assert min(image.size) > 100
    assert "features.c1" in html and "61,706" in html  # the analyzer's table: LeNet-5's parameter count
    assert html.count("<svg") == 1 and 'id="node-1-label"' in html  # the architecture graph, inline
    assert "model-randomisation check (Adebayo et al. 2018)" in html
    verdicts = re.findall(r'alt="Grad-CAM of test image \d+; ([^"]+)"', html)
    assert len(verdicts) == 3 and all(v.startswith("sanity check passed") for v in verdicts), verdicts

    require_chromium()
    probed = tmp_path / "probed.html"
    probed.write_text(html.replace("</body>", PROBE + "</body>"))
    result = chromium("--dump-dom", "--virtual-time-budget=10000", probed.as_uri(), cwd=tmp_path)
    probe = json.loads(re.search(r"data-probe=\"([^\"]*)\"", result.stdout).group(1).replace("&quot;", '"'))
    assert probe == {"images": len(pictures), "broken": 0, "errors": []}

    width = page_width(html, tmp_path, "report")
    assert width["window"] == WIDTH and width["page"] == width["view"] > WIDTH - 20 and width["scrolling"] == []
    shot = tmp_path / "report.png"
    result = chromium(f"--screenshot={shot}", f"--window-size={WIDTH},1800", "--enable-logging=stderr", "--v=0",
                      path.as_uri(), cwd=tmp_path)
    assert not [line for line in result.stderr.splitlines() if "CONSOLE" in line], result.stderr
    with Image.open(shot) as image:
        pixels = np.asarray(image.convert("L"), dtype=float)
    assert pixels.shape == (1800, WIDTH) and pixels.std() > 10  # a page was drawn, not a blank screen
    assert not horizontal_scrollbar(shot)
    wide = tmp_path / "wide.html"  # the control: a page too wide for the window shows the scrollbar we look for
    wide.write_text(html.replace("<body>", '<body><div style="width: 2400px; height: 4px"></div>', 1))
    control = tmp_path / "wide.png"
    chromium(f"--screenshot={control}", f"--window-size={WIDTH},1800", wide.as_uri(), cwd=tmp_path)
    assert horizontal_scrollbar(control)


def test_wide_tables_fit_1280_pixels(tmp_path):
    """GoogLeNet's analyzer table (200+ rows) and a model of very long layer names (1419 pixels
    wide unwrapped, measured), in the report's page style: they wrap rather than scroll."""
    from torch import nn

    from cnnlab.analysis import render, summary
    from cnnlab.viz.report import CSS, summary_table

    require_chromium()
    long = "_with_a_name_long_enough_to_need_wrapping_in_any_table_of_a_report_read_on_a_laptop_screen"
    nested = nn.Sequential()
    nested.add_module("features" + long, nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3, 2, 1)))
    nested.add_module("classifier" + long, nn.Sequential(nn.Flatten(), nn.Linear(8 * 15 * 15, 10)))
    for name, model in (("googlenet", "googlenet"), ("nested", nested)):
        table = summary_table(json.loads(render(summary(model, (3, 32, 32) if name == "nested" else None), "json")))
        html = f"<!DOCTYPE html><html><head><style>{CSS}</style></head><body>{table}</body></html>"
        width = page_width(html, tmp_path, name)
        assert width["window"] == WIDTH and width["page"] == width["view"] > WIDTH - 20, (name, width)
        assert width["scrolling"] == [], name
