"""Every zoo model's explorer page at its default input (random weights, one pattern image) stays
within the size limits and holds what its plan says; the branches of GoogLeNet and the shortcuts
of ResNet-20 are edges of the drawn graph; LeNet-5 and ResNet-20 with 8 images fit 2 MB and 8 MB.

Pages of models above HEAVY multiply-accumulates are made here without Grad-CAM (--cam-classes 0),
to keep the test's CPU time down (a backward pass each at 224×224): everything else on their pages
is the same code, and Grad-CAM with its sanity check runs on every lighter model here (AlexNet with
its 1000 classes among them) and on a trained LeNet-5 in test_explore_page."""

import json
import re
from functools import cache

import pytest

from cnnlab.analysis import summary
from cnnlab.models import list_models
from cnnlab.viz.explore import build_page
from cnnlab.viz.explore.document import HARD_LIMIT, MiB
from cnnlab.viz.explore.inputs import chosen_inputs
from cnnlab.viz.subject import open_subject

HEAVY = 1_000_000_000
LIMIT = 25 * MiB


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: forty small models' passes spend more time waking threads than computing,
    and on a shared two-core machine a second spinning thread makes them many times slower."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def document_of(page: str) -> dict:
    text = re.search(r'<script id="cnnlab-data" type="application/json">(.*?)</script>', page, re.DOTALL).group(1)
    return json.loads(text.replace("<\\/", "</"))


REUSED = {"googlenet", "resnet20"}  # pages the graph test reads again
_pages: dict[str, tuple] = {}


@cache
def heavy(name: str) -> bool:
    return summary(name).totals.macs > HEAVY


def page_of(name: str, count: int = 1):
    if count == 1 and name in _pages:
        return _pages[name]
    subject = open_subject(name)
    options = {"cam_classes": 0} if heavy(name) else {}
    explorer, page = build_page(subject, chosen_inputs(subject, [], count), **options)
    result = explorer, page, document_of(page)
    if count == 1 and name in REUSED:
        _pages[name] = result
    return result


@pytest.mark.parametrize("name", list_models())
def test_every_zoo_model_has_a_page_within_the_limits(name):
    explorer, page, document = page_of(name)
    size = len(page.encode("utf-8"))
    assert size < LIMIT and size < HARD_LIMIT
    assert size <= explorer.plan.estimate * 1.05  # the plan's estimate is what kept it small
    network, (image,) = document["network"], document["images"]
    assert network["model"] == name and network["trained"] is False
    assert len(network["nodes"]) <= 80
    channels = network["channels"]
    for node in network["nodes"]:
        stored = image["values"].get(str(node["id"]))
        held = [min(node["shape"][0], channels), *node["shape"][1:]]
        if node["derive"] is not None:  # recomputed by the page from earlier layers
            assert stored is None and all(s == -1 or s < node["id"] for s in node["sources"])
        elif len(node["shape"]) == 3:
            assert stored["shape"] == held
        if node["rest"]:  # a convolution reading channels the page does not hold
            assert image["rest"][str(node["id"])]["shape"] == held
    if "logits" in image:  # a classifier (the Inception blocks alone output feature maps)
        cam = image["cam"]
        if heavy(name):
            assert cam == {"problem": "not computed for this page (--cam-classes 0)"}
        else:
            if not any(len(n["shape"]) == 3 for n in network["nodes"]):  # the fully connected Highway nets
                assert "no spatial feature maps" in cam["problem"]
            else:
                assert len(cam["maps"]) >= 1 and "sanity" in cam, cam.get("problem")


def test_lenet5_and_resnet20_with_eight_images_fit():
    for name, limit in (("lenet5", 2 * MiB), ("resnet20", 8 * MiB)):
        _, page, document = page_of(name, count=8)
        assert len(document["images"]) == 8
        assert len(page.encode("utf-8")) <= limit, name


def test_branches_and_shortcuts_are_edges_of_the_drawn_graph():
    _, _, googlenet = page_of("googlenet")
    nodes = {n["id"]: n for n in googlenet["network"]["nodes"]}
    merges = [n for n in nodes.values() if n["type"] == "cat"]
    assert len(merges) == 9  # nine Inception modules
    for cat in merges:
        branches = [nodes[s] for s in cat["sources"]]
        assert [b["name"].rsplit(".", 1)[-1] for b in branches] == ["branch1", "branch2", "branch3", "branch4"]
        assert len({b["column"] for b in branches}) == 1 and len({b["row"] for b in branches}) == 4  # side by side
        assert len({tuple(b["sources"]) for b in branches}) == 1  # all four read the module's input

    _, _, resnet = page_of("resnet20")
    nodes = {n["id"]: n for n in resnet["network"]["nodes"]}
    adds = [n for n in nodes.values() if n["type"] == "add"]
    assert len(adds) == 9
    for add in adds:
        main, shortcut = (nodes[s] for s in add["sources"])
        assert main["name"].endswith(".bn2")
        if shortcut["name"].endswith("downsample"):  # a projection drawn beside the main path
            assert shortcut["row"] != main["row"]
        else:  # the identity: an edge from the block's input that skips the block
            assert shortcut["name"] in ("relu",) or shortcut["name"].endswith("relu#2")
            assert add["column"] - shortcut["column"] > 1


def test_a_page_with_a_channel_limit_adds_up_in_chromium(tmp_path):
    """GoogLeNet with 16 channels per layer (--channels 16): a convolution reading 64 channels shows
    16 of them and adds the exact sum of the others' products; a ceil-mode pooling window hangs over
    the edge."""
    import torch
    from explore_browser import browser, click_at, console_errors, wait_ready

    subject = open_subject("googlenet")
    images = chosen_inputs(subject, [], 1)
    explorer, page = build_page(subject, images, channels=16, cam_classes=0)
    path = tmp_path / "googlenet.html"
    path.write_text(page, encoding="utf-8")
    kept = {}
    modules = dict(subject.model.named_modules())
    hooks = [modules[n].register_forward_hook(lambda _m, _i, out, n=n: kept.__setitem__(n, out.detach().clone()))
             for n in ("conv3.conv", "maxpool2")]
    with torch.no_grad():
        subject.model(images[0][0])
    for hook in hooks:
        hook.remove()
    channels = explorer.plan.channels
    assert channels == 16

    driver = browser(tmp_path / "profile")
    try:
        driver.get(path.as_uri())
        wait_ready(driver)
        assert f"first {channels} channels" in driver.find_element("id", "limit").text
        missing = driver.execute_script(
            "return [...cnnlabExplorer.nodes.values()].filter(n => [1, 3].includes(n.shape.length) && "
            "!cnnlabExplorer.values(0).get(n.id)).map(n => n.name)")
        assert missing == []  # every layer's maps are held or recomputed
        for name, channel, (y, x) in (("conv3.conv", 5, (10, 41)), ("maxpool2", 7, (27, 27))):
            node = driver.execute_script(
                "return [...cnnlabExplorer.nodes.values()].find(n => n.name === arguments[0]).id", name)
            canvas = driver.find_element("css selector", f'canvas[data-node="{node}"]')
            cols, width, height = (int(canvas.get_attribute(a)) for a in ("data-cols", "data-cell-w", "data-cell-h"))
            click_at(driver, canvas, (channel % cols + 0.5) * width, (channel // cols + 0.5) * height)
            grid = driver.find_element("id", "map-canvas")
            cell = int(grid.get_attribute("data-cell"))
            click_at(driver, grid, (x + 0.5) * cell, (y + 0.5) * cell)
            value = float(driver.find_element("id", "unit-value").text)
            assert value == pytest.approx(float(kept[name][0, channel, y, x]), abs=1e-4), name
            if name == "conv3.conv":
                shown, rest, bias, total = (float(driver.find_element("id", i).text)
                                            for i in ("arith-shown", "arith-rest", "arith-bias", "arith-total"))
                assert len(driver.find_elements("css selector", "#unit .windows > div")) == channels
                assert shown + rest + bias == pytest.approx(total, abs=1e-4)
                assert total == pytest.approx(value, abs=1e-4)
            else:
                cells = [c.text for c in driver.find_elements("css selector", "#unit table.num td")]
                assert cells.count("padding") == 5  # 3×3 window at (54, 54) of a 56×56 map, ceil mode
                assert float(driver.find_element("id", "pool-result").text) == pytest.approx(value, abs=1e-6)
        assert console_errors(driver) == []
    finally:
        driver.quit()


def test_layers_recomputed_by_the_page_equal_torch_twenty_deep(tmp_path):
    """ResNet-20 drawn layer by layer, every channel: the page recomputes most convolutions (as many
    as its time budget allows) and every batch norm, ReLU and addition from the input image and the
    weights; twenty weighted layers deep its values still equal torch's."""
    import numpy as np
    from explore_browser import browser, click_at, console_errors, wait_ready

    from cnnlab.viz.explore.record import record

    subject = open_subject("resnet20")
    images = chosen_inputs(subject, [], 1)
    explorer, page = build_page(subject, images, cam_classes=0)
    path = tmp_path / "resnet20.html"
    path.write_text(page, encoding="utf-8")
    calls, _ = record(subject.model, images[0][0])  # torch's own output of every analyzer row
    driver = browser(tmp_path / "profile")
    try:
        driver.get(path.as_uri())
        wait_ready(driver)
        derived = 0
        for node in explorer.nodes:
            data = driver.execute_script(
                "const v = cnnlabExplorer.values(0).get(arguments[0]); return v ? Array.from(v.data) : null", node.id)
            expected = calls[node.call].output[0].flatten().numpy()
            np.testing.assert_allclose(np.asarray(data), expected[: len(data)], rtol=1e-4, atol=1e-4,
                                       err_msg=node.row.name)
            derived += node.derive == "conv"
        assert derived >= 12  # of 19 convolutions
        # a corner unit of the first 3×3 convolution (padding 1): its field reaches into the padding
        canvas = driver.find_element("css selector", 'canvas[data-node="0"]')
        click_at(driver, canvas, 2, 2)
        grid = driver.find_element("id", "map-canvas")
        cell = int(grid.get_attribute("data-cell"))
        click_at(driver, grid, cell / 2, cell / 2)
        (fy, fx) = explorer.summary.rows[0].receptive_field
        first = [float(a.start - (a.size - 1) / 2) for a in (fy, fx)]
        assert first == [-1.0, -1.0]
        assert driver.find_element("id", "field-box").text.startswith("rows -1 … 1, columns -1 … 1 ")
        assert "padding" in driver.find_element("id", "field").text
        assert float(driver.find_element("id", "unit-value").text) == pytest.approx(
            float(calls[0].output[0, 0, 0, 0]), abs=1e-4)
        assert console_errors(driver) == []
    finally:
        driver.quit()
