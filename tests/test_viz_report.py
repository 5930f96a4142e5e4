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


def test_cli_prints_the_png_paths(run, tmp_path, capsys):
    image = tmp_path / "digit.png"
    Image.fromarray((np.eye(8)[::-1] * 255).astype(np.uint8)).save(image)
    out = tmp_path / "figures"
    assert main(["viz", "activations", str(run), str(image), "--layers", "c1,c3", "--out", str(out)]) == 0
    assert main(["viz", "cam", str(run), str(image), "--method", "scorecam", "--out", str(out)]) == 0
    assert main(["viz", "overlay", str(run), str(image), "--layer", "c3", "--channels", "0,5", "--out", str(out)]) == 0
    assert main(["viz", "curves", str(run), str(run), "--out", str(out)]) == 0
    printed = capsys.readouterr().out.split()
    assert [Path(p).name for p in printed] == ["activations-features.c1.png", "activations-features.c3.png",
                                               "cam-scorecam.png", "overlay-features.c3.png",
                                               f"curves-{run.name}-vs-{run.name}.png"]
    assert all(Path(p).is_file() for p in printed)
    assert main(["viz", "overlay", str(run), str(image), "--layer", "c3", "--channels", "16"]) == 2
    assert "no channel 16" in capsys.readouterr().err


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


def test_report_is_self_contained_and_loads_in_chromium(run, tmp_path):
    path = write_report(run, force=True)
    assert path == run / "report.html"
    html = path.read_text()
    for section in ("Final metrics", "Training curves", "Architecture", "Confusion matrix", "Misclassified",
                    "First-layer filters", "class activation maps", "Configuration"):
        assert section in html
    assert "Not drawn" not in html
    assert not re.search(r'(src|href)="(https?:)?//', html)  # nothing fetched from the network
    pictures = images_of(html)
    assert len(pictures) >= 10
    for data in pictures:
        with Image.open(__import__("io").BytesIO(data)) as image:
            image.load()
            assert min(image.size) > 100
    assert "features.c1" in html and "61,706" in html  # the analyzer's table: LeNet-5's parameter count

    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (apt-get install chromium)")
        pytest.skip("chromium is not installed")
    probed = tmp_path / "probed.html"
    probed.write_text(html.replace("</body>", PROBE + "</body>"))
    result = chromium("--dump-dom", "--virtual-time-budget=10000", probed.as_uri(), cwd=tmp_path)
    probe = json.loads(re.search(r"data-probe=\"([^\"]*)\"", result.stdout).group(1).replace("&quot;", '"'))
    assert probe == {"images": len(pictures), "broken": 0, "errors": []}

    shot = tmp_path / "report.png"
    result = chromium(f"--screenshot={shot}", "--window-size=1400,1800", "--enable-logging=stderr", "--v=0",
                      path.as_uri(), cwd=tmp_path)
    assert not [line for line in result.stderr.splitlines() if "CONSOLE" in line], result.stderr
    with Image.open(shot) as image:
        pixels = np.asarray(image.convert("L"), dtype=float)
    assert pixels.shape == (1800, 1400) and pixels.std() > 10  # a page was drawn, not a blank screen
