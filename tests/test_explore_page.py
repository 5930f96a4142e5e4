"""`cnnlab explore` on a LeNet-5 really trained on the digits (cnnlab's own trainer, 2 epochs on the
CPU), opened from disk in headless Chromium: what the page shows after real clicks is checked
against the model's activations in torch, the analyzer's receptive fields and the arithmetic."""

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from explore_browser import browser, click_at, console_errors, wait_ready

from cnnlab.analysis import summary
from cnnlab.cli import main
from cnnlab.data import load_arrays
from cnnlab.viz.subject import open_subject

TOLERANCE = 1e-4
NUMBER = r"(-?\d+(?:\.\d+)?(?:e[-+]?\d+)?)"


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("explore") / "lenet5-digits"
    assert main(["train", "lenet5", "--epochs", "2", "--out", str(out), "--quiet", "--device", "cpu"]) == 0
    return out


@pytest.fixture(scope="module")
def page(run) -> Path:
    assert main(["explore", str(run)]) == 0
    return run / "explore.html"


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    d = browser(tmp_path_factory.mktemp("profile"))
    yield d
    d.quit()


@pytest.fixture(scope="module")
def opened(driver, page):
    driver.get(page.as_uri())
    wait_ready(driver)
    return driver


def reference(run, image_name: str) -> dict[str, torch.Tensor]:
    """Every module's output for the test image named on the page, by forward hooks (clones: the
    ReLUs work in place), computed here from the data set and the checkpoint, not from the page."""
    subject = open_subject(run)
    images, _, _ = load_arrays("digits", "test")
    index = int(re.fullmatch(r"test image (\d+)", image_name).group(1))
    x = subject.adapt(images[index:index + 1])
    outputs = {}
    hooks = [m.register_forward_hook(lambda _m, _i, out, n=n: outputs.__setitem__(n, out.detach().clone()))
             for n, m in subject.model.named_modules() if n]
    with torch.no_grad():
        outputs["logits"] = subject.model(x)
    for hook in hooks:
        hook.remove()
    outputs["flatten"] = torch.flatten(outputs["features"], 1)
    return outputs


def node_id(driver, name: str) -> int:
    return driver.execute_script("return [...cnnlabExplorer.nodes.values()].find(n => n.name === arguments[0]).id",
                                 name)


def click_channel(driver, name: str, channel: int) -> None:
    canvas = driver.find_element("css selector", f'canvas[data-node="{node_id(driver, name)}"]')
    cols, width, height = (int(canvas.get_attribute(a)) for a in ("data-cols", "data-cell-w", "data-cell-h"))
    click_at(driver, canvas, (channel % cols + 0.5) * width, (channel // cols + 0.5) * height)


def click_unit(driver, y: int, x: int) -> None:
    canvas = driver.find_element("id", "map-canvas")
    cell = int(canvas.get_attribute("data-cell"))
    click_at(driver, canvas, (x + 0.5) * cell, (y + 0.5) * cell)


def shown(driver, element_id: str) -> float:
    return float(driver.find_element("id", element_id).text)


def box(driver) -> tuple[float, ...]:
    text = driver.find_element("id", "field-box").text
    match = re.match(rf"rows {NUMBER} … {NUMBER}, columns {NUMBER} … {NUMBER}", text)
    return tuple(float(v) for v in match.groups())


def analyzer_box(run, name: str, y: int, x: int) -> tuple[float, ...]:
    """The analyzer's field of unit (y, x): centre of unit 0 at `start`, `jump` apart, `size` wide."""
    row = next(r for r in summary(open_subject(run).model, (1, 32, 32)).rows if r.name == name)
    (fy, fx) = row.receptive_field
    first_y = y * fy.jump + fy.start - (fy.size - 1) / 2
    first_x = x * fx.jump + fx.start - (fx.size - 1) / 2
    return tuple(float(v) for v in (first_y, first_y + fy.size - 1, first_x, first_x + fx.size - 1))


def image_name(driver) -> str:
    return driver.execute_script("return document.querySelector('.pick.on img').alt").split(" (")[0]


def test_page_is_self_contained_and_small(page):
    html = page.read_text(encoding="utf-8")
    assert page.stat().st_size <= 2 * 1024 * 1024  # LeNet-5 with 8 images: at most 2 MB
    assert html.count("test image ") >= 8
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)  # nothing fetched
    assert not re.search(r"<link|@import|url\((?!#)", html)  # no external styles or fonts (url(#id) is in-page)
    assert re.search(r"<script>", html) and not re.search(r"<script[^>]+src=", html)


def test_convolution_unit_equals_torch_and_its_arithmetic_adds_up(opened, run):
    driver = opened
    assert console_errors(driver) == []
    click_channel(driver, "features.c3", 5)
    click_unit(driver, 3, 7)
    torch_values = reference(run, image_name(driver))
    value = shown(driver, "unit-value")
    assert value == pytest.approx(float(torch_values["features.c3"][0, 5, 3, 7]), abs=TOLERANCE)
    assert shown(driver, "arith-value") == value
    products, bias, total = (shown(driver, i) for i in ("arith-shown", "arith-bias", "arith-total"))
    assert products + bias == pytest.approx(total, abs=TOLERANCE)
    assert total == pytest.approx(value, abs=TOLERANCE)  # Σ w·x + b is the map's value
    assert bias == pytest.approx(float(open_subject(run).model.features.c3.bias[5].detach()), abs=1e-6)
    assert shown(driver, "arith-after") == pytest.approx(max(value, 0.0), abs=TOLERANCE)  # after the ReLU
    # six input channels × 25 weights, each product shown
    windows = driver.find_elements("css selector", "#unit .windows > div")
    assert len(windows) == 6
    assert box(driver) == analyzer_box(run, "features.c3", 3, 7)
    assert console_errors(driver) == []


def test_receptive_field_and_a_pooling_unit(opened, run):
    driver = opened
    click_channel(driver, "features.s4", 2)
    click_unit(driver, 0, 4)
    torch_values = reference(run, image_name(driver))
    assert shown(driver, "unit-value") == pytest.approx(float(torch_values["features.s4"][0, 2, 0, 4]), abs=TOLERANCE)
    assert shown(driver, "pool-result") == shown(driver, "unit-value")  # the maximum of its window
    window = [float(c.text) for c in driver.find_elements("css selector", "#unit table.num td")]
    assert max(window) == pytest.approx(shown(driver, "pool-result"), abs=1e-3)  # 4-digit cells
    assert box(driver) == analyzer_box(run, "features.s4", 0, 4)


def test_every_layer_the_page_holds_or_recomputes_equals_torch(opened, run):
    driver = opened
    torch_values = reference(run, image_name(driver))
    nodes = driver.execute_script("return [...cnnlabExplorer.nodes.values()].map(n => [n.id, n.name, n.derive])")
    assert {name for _, name, _ in nodes} >= {"features.c1", "features.relu1", "features.s2", "flatten",
                                              "classifier.output"}
    derived = 0
    for node, name, derive in nodes:
        page_values = np.asarray(driver.execute_script(
            "return Array.from(cnnlabExplorer.values(cnnlabExplorer.state.image).get(arguments[0]).data)", node))
        expected = torch_values[name][0].flatten().numpy()
        np.testing.assert_allclose(page_values, expected[: len(page_values)], atol=TOLERANCE, err_msg=name)
        assert len(page_values) == len(expected)  # LeNet-5 fits whole: every channel of every layer
        derived += derive is not None
    assert derived >= 6  # ReLUs, poolings and the flatten are recomputed by the page, exactly


def test_output_softmax_top5_and_grad_cam(opened, run):
    driver = opened
    torch_values = reference(run, image_name(driver))
    probabilities = torch.softmax(torch_values["logits"][0].double(), 0).numpy()
    rows = driver.find_elements("css selector", "#softmax-table tr[data-class]")
    assert len(rows) == 10
    for row in rows:
        k = int(row.get_attribute("data-class"))
        assert float(row.find_element("css selector", "td.p").text) == pytest.approx(probabilities[k], abs=TOLERANCE)
    top5 = {int(r.get_attribute("data-class")) for r in rows if "top" in r.get_attribute("class")}
    assert top5 == set(np.argsort(-probabilities)[:5].tolist())
    assert driver.find_element("id", "softmax-formula").text.replace("\n", "") == "softmax: pk = ezk / Σj ezj"
    predicted = driver.find_element("id", "prediction").text
    assert predicted.startswith(f"{int(probabilities.argmax())} (")
    choose = driver.find_element("id", "cam-class")
    options = choose.find_elements("tag name", "option")
    assert len(options) == 10  # every digit has its Grad-CAM map
    options[3].click()
    assert driver.find_element("id", "cam-class").get_attribute("value") == "3"
    sanity = driver.find_element("id", "sanity").text
    assert "Spearman" in sanity and re.search(r"correlation of (-?\d\.\d{3}|—)", sanity)
    assert console_errors(driver) == []


def test_switching_input_and_language(opened, run):
    driver = opened
    picks = driver.find_elements("css selector", ".pick")
    assert len(picks) == 8
    picks[4].click()
    click_channel(driver, "features.c1", 1)
    click_unit(driver, 20, 2)
    torch_values = reference(run, image_name(driver))
    assert image_name(driver) != "test image 0"
    assert shown(driver, "unit-value") == pytest.approx(float(torch_values["features.c1"][0, 1, 20, 2]), abs=TOLERANCE)
    driver.find_element("id", "lang").click()
    text = driver.find_element("tag name", "body").text
    for term in ("卷积核", "步长", "填充", "感受野", "输入维度", "输出维度"):
        assert term in text, term
    driver.find_element("id", "lang").click()
    assert "Receptive field" in driver.find_element("tag name", "body").text
    assert console_errors(driver) == []


def test_chinese_page_and_bad_input(run, tmp_path, capsys):
    out = tmp_path / "zh.html"
    assert main(["explore", str(run), "--lang", "zh", "--count", "2", "--out", str(out)]) == 0
    html = out.read_text(encoding="utf-8")
    assert '<html lang="zh-CN">' in html and html.count("test image ") == 2
    capsys.readouterr()
    for argv, message in (
            (["explore", str(run), "--out", str(out)], "already exists"),
            (["explore", str(run), "--out", str(run / "config.json"), "--force"], "refusing to write"),
            (["explore", str(run), str(tmp_path / "missing.png"), "--out", str(tmp_path / "a.html")], "does not exist"),
            (["explore", str(run), "--channels", "0"], "--channels must be at least 1"),
            (["explore", "lenet6", "--out", str(tmp_path / "b.html")], "lenet6"),
            (["explore", str(run), "--port", "9000"], "--host and --port are for --serve"),
            (["explore", str(run), str(out), "--count", "2"], "leave it out when naming IMAGE files"),
            (["explore", str(run), "--cam-classes", "-1"], "--cam-classes must be 0 or more"),
            (["explore", str(run), "--serve", "--out", str(tmp_path / "c.html")], "--serve writes no file")):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
