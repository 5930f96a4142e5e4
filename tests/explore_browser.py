"""Headless Chromium driven through selenium, for the explorer's tests: Debian's `chromium` and
`chromium-driver` (installed by .ci/run), a fresh profile per browser, no network, console kept."""

from __future__ import annotations

import os
import shutil

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run"]


def browser(profile, width: int = 1400, height: int = 1800):
    """A selenium Chrome driver for Debian's Chromium; skips (fails in CI) when either is missing."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _missing("selenium is not installed (pip install -e '.[dev]')")
    if CHROMIUM is None or CHROMEDRIVER is None:
        _missing("chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS + [f"--user-data-dir={profile}", f"--window-size={width},{height}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def _missing(reason: str):
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def console_errors(driver) -> list[str]:
    """Console messages of level SEVERE (errors, uncaught exceptions, failed loads) since the last call."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def wait_ready(driver, timeout: float = 20) -> int:
    """Milliseconds from navigation start to the page's first complete drawing (body[data-ready])."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(lambda d: d.execute_script("return document.body.dataset.ready"))
    return int(driver.execute_script("return document.body.dataset.ready"))


def click_at(driver, element, x: float, y: float) -> None:
    """A real mouse click at (x, y) CSS pixels from the element's top-left corner."""
    from selenium.webdriver.common.action_chains import ActionChains

    width, height = element.size["width"], element.size["height"]
    ActionChains(driver).move_to_element_with_offset(element, x - width / 2, y - height / 2).click().perform()
