"""A real browser for the pages the API serves (Debian's headless Chromium, driven by
Selenium): the fixture (in conftest.py) and what tests ask of the page."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

BROWSER_WAIT_S = 10
# As Debian packages them; `make browser` (run by `make test`) installs both.
CHROMIUM = os.environ.get("HOOKRELAY_TEST_CHROMIUM") or shutil.which("chromium")
CHROMEDRIVER = os.environ.get("HOOKRELAY_TEST_CHROMEDRIVER") or shutil.which("chromedriver")


def chromium() -> Iterator[webdriver.Chrome]:
    """A headless Chromium of its own profile, quit (and the profile removed) afterwards."""
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.fail("Chromium and ChromeDriver are needed: run `make browser` (Debian packages)")
    profile = tempfile.mkdtemp(prefix="hookrelay-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # The page's own errors (an exception a script did not catch) are read back by the tests.
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    for flag in (
        "--headless=new",
        "--no-sandbox",  # the tests may run as root
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        # No calls home: the machine may have no network beyond loopback.
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
        "--window-size=1280,900",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def text_of(driver: webdriver.Chrome, element_id: str) -> str:
    text: str = driver.find_element(By.ID, element_id).text
    return text


async def wait_for_text(driver: webdriver.Chrome, element_id: str, expected: str) -> None:
    """Wait (in a thread, so the API keeps serving) until the element shows `expected`."""

    def wait() -> None:
        WebDriverWait(driver, BROWSER_WAIT_S).until(
            lambda d: text_of(d, element_id) == expected,
            f"#{element_id} never showed {expected!r}",
        )

    await asyncio.to_thread(wait)


async def wait_for(driver: webdriver.Chrome, css: str, contains: str = "") -> None:
    """Wait (in a thread) until an element matching `css` shows, holding `contains`."""

    def shown(d: webdriver.Chrome) -> bool:
        return any(contains in e.text for e in d.find_elements(By.CSS_SELECTOR, css))

    def wait() -> None:
        WebDriverWait(driver, BROWSER_WAIT_S).until(shown, f"{css} never showed {contains!r}")

    await asyncio.to_thread(wait)


def script_errors(driver: webdriver.Chrome) -> list[str]:
    """The errors the page's scripts raised and nobody caught, since last asked. A failed
    request the page handled (a 401, a 404) is the browser's note, not a script's error."""
    return [
        entry["message"]
        for entry in driver.get_log("browser")
        if entry["level"] == "SEVERE" and "Failed to load resource" not in entry["message"]
    ]
