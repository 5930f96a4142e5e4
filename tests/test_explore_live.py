"""`cnnlab explore RUN --serve`: a real server process on a free port, real uploads, a digit drawn in
headless Chromium, Ctrl-C; on a LeNet-5 trained on the digits by cnnlab's own trainer."""

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from explore_browser import browser, console_errors, wait_ready
from PIL import Image

from cnnlab.cli import main
from cnnlab.data import load_arrays
from cnnlab.viz.explore.inputs import UPLOAD_LIMIT
from cnnlab.viz.subject import open_subject


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("live") / "lenet5-digits"
    assert main(["train", "lenet5", "--epochs", "2", "--out", str(out), "--quiet", "--device", "cpu"]) == 0
    return out


def cnnlab(*args) -> list[str]:
    return [sys.executable, "-c", "import sys; from cnnlab.cli import main; sys.exit(main(sys.argv[1:]))", *args]


@pytest.fixture(scope="module")
def server(run):
    """The server on a port the OS picks (--port 0); the address is its first line of output."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    process = subprocess.Popen(cnnlab("explore", str(run), "--serve", "--port", "0", "--count", "2"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    line = process.stdout.readline()
    match = re.search(r"(http://127\.0\.0\.1:(\d+)/)", line)
    if match is None:
        process.kill()
        pytest.fail(f"no address from the server: {line!r} {process.stderr.read()}")
    yield process, match.group(1), int(match.group(2))
    if process.poll() is None:
        process.kill()
        process.wait()


def post(url: str, data: bytes, kind: str = "image/png") -> tuple[int, dict]:
    request = urllib.request.Request(url + "api/image", data=data, method="POST",
                                     headers={"Content-Type": kind, "X-Image-Name": "test.png"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def png_of(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def test_uploads_real_and_broken(server, run):
    _, url, _ = server
    with urllib.request.urlopen(url, timeout=30) as response:
        page = response.read().decode("utf-8")
    assert response.status == 200 and '"live":true' in page
    images, _, _ = load_arrays("digits", "test")
    digit = (images[5, 0] * (255 // 16)).astype(np.uint8)  # the data set's 8x8 digit at full contrast
    status, answer = post(url, png_of(digit))
    assert status == 200
    record = answer["image"]
    logits = np.frombuffer(__import__("base64").b64decode(record["logits"]["data"]), "<f4")
    subject = open_subject(run)
    with torch.no_grad():
        expected = subject.model(subject.load_input(io.BytesIO(png_of(digit))))[0].numpy()
    np.testing.assert_allclose(logits, expected, atol=1e-5)  # the server ran the run's model on the upload
    assert record["name"] == "upload: test.png"

    truncated = png_of(digit)[:60]
    for data, reason in ((b"certainly not an image", "not an image Pillow can read"),
                         (truncated, "Pillow cannot decode the image"),
                         (b"\0" * (UPLOAD_LIMIT + 1), "the limit is"),
                         (b"", "empty")):
        status, answer = post(url, data)
        assert status == 400, data[:20]
        assert reason in answer["error"] and "\n" not in answer["error"]
    with urllib.request.urlopen(url, timeout=30) as response:  # still serving
        assert response.status == 200


def test_a_digit_drawn_on_the_canvas_is_predicted(server, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.support.ui import WebDriverWait

    _, url, _ = server
    driver = browser(tmp_path / "profile")
    try:
        driver.get(url)
        wait_ready(driver)
        assert len(driver.find_elements("css selector", ".pick")) == 2
        pad = driver.find_element("id", "pad")
        strokes = ActionChains(driver).move_to_element_with_offset(pad, -10, -60).click_and_hold()
        for dx, dy in ((0, 30), (0, 30), (0, 30), (0, 30)):  # a "1": one vertical stroke
            strokes = strokes.move_by_offset(dx, dy)
        strokes.release().perform()
        driver.find_element("id", "send").click()
        WebDriverWait(driver, 60).until(lambda d: len(d.find_elements("css selector", ".pick")) == 3)
        chosen = driver.find_element("css selector", ".pick.on img").get_attribute("alt")
        assert chosen == "upload: drawing"
        prediction = driver.find_element("id", "prediction").text
        assert re.fullmatch(r"\d \((0|1|0\.\d+)\)", prediction), prediction
        drawn = driver.execute_script(
            "const v = cnnlabExplorer.values(cnnlabExplorer.state.image).get(-1).data;"
            "return [Math.min(...v), Math.max(...v)]")
        assert drawn[1] > drawn[0]  # the stroke reached the model's input
        assert console_errors(driver) == []
    finally:
        driver.quit()


def test_port_in_use_is_one_line_and_ctrl_c_stops_cleanly(server, run):
    process, url, port = server
    result = subprocess.run(cnnlab("explore", str(run), "--serve", "--port", str(port)), capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and f"port {port} on 127.0.0.1 is already in use" in result.stderr
    with urllib.request.urlopen(url, timeout=30) as response:  # the first server is unharmed
        assert response.status == 200
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "cnnlab explore: stopped" in out and "Traceback" not in err
    time.sleep(0.2)
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url, timeout=5)
