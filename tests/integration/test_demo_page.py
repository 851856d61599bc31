"""The live job page in a real browser (Debian's headless Chromium, driven by Selenium): a job
followed from queued to completed as its events arrive over SSE."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from selenium import webdriver
from selenium.webdriver.common.by import By

from tests.integration.api_calls import bearer, create_app_with_key, send_event
from tests.integration.browser import text_of, wait_for_text

Client = TestClient  # type: ignore[type-arg]


async def open_page(api: Client, driver: webdriver.Chrome, app: dict[str, Any], job: str) -> None:
    """Issue a stream token for `job` and open the page on it, as a backend would link it."""
    response = await api.post(
        f"/v1/apps/{app['id']}/stream-tokens", json={"job_id": job}, headers=bearer(app["api_key"])
    )
    token = (await response.json())["token"]
    page = api.make_url(f"/demo#app={app['id']}&job={job}&token={token}")
    await asyncio.to_thread(driver.get, str(page))


@pytest.mark.settings(demo_page=True)
async def test_a_browser_follows_a_job_from_queued_to_completed_live(
    api: Client, browser: webdriver.Chrome
) -> None:
    app = await create_app_with_key(api)
    await open_page(api, browser, app, "img-1")
    await wait_for_text(browser, "connection", "open")
    assert text_of(browser, "state") == "UNKNOWN"  # shown upper-case by the page's style

    steps: list[tuple[str, dict[str, Any], str, str]] = [
        ("job.queued", {}, "QUEUED", "0%"),
        ("job.started", {}, "RUNNING", "0%"),
        ("job.progress", {"percent": 25, "message": "sampling"}, "RUNNING", "25%"),
        ("job.progress", {"percent": 70, "message": "upscaling"}, "RUNNING", "70%"),
        (
            "job.completed",
            {"output": {"image": "https://cdn.example.com/cat.png"}},
            "COMPLETED",
            "100%",
        ),
    ]
    for event_type, data, state, percent in steps:
        await send_event(api, app, event_type, {"job_id": "img-1", **data})
        await send_event(api, app, "job.progress", {"job_id": "another-job", "percent": 1})
        await wait_for_text(browser, "state", state)
        await wait_for_text(browser, "percent", percent)
    await wait_for_text(browser, "event-count", str(len(steps)))
    assert "cat.png" in text_of(browser, "output")
    assert text_of(browser, "message") == ""  # "upscaling" is over
    # Nothing follows a finished job: the page has let the stream go.
    await wait_for_text(browser, "connection", "closed (the job has ended)")
    assert browser.execute_script("return source.readyState === EventSource.CLOSED") is True
    types = [
        item.get_attribute("data-type")
        for item in browser.find_elements(By.CSS_SELECTOR, "#log li")
    ]
    assert types == [step[0] for step in steps]  # this job's events only, in order, once


@pytest.mark.settings(demo_page=True)
async def test_the_page_shows_what_happened_before_it_opened(
    api: Client, browser: webdriver.Chrome
) -> None:
    app = await create_app_with_key(api)
    await send_event(api, app, "job.queued", {"job_id": "j9"})
    await send_event(api, app, "job.progress", {"job_id": "j9", "percent": 40, "message": "half"})
    await open_page(api, browser, app, "j9")
    await wait_for_text(browser, "percent", "40%")
    assert text_of(browser, "message") == "half"
    await send_event(
        api, app, "job.failed", {"job_id": "j9", "error": {"code": "oom", "message": "no memory"}}
    )
    await wait_for_text(browser, "state", "FAILED")
    assert text_of(browser, "error") == "oom: no memory"
    assert text_of(browser, "message") == ""
    await wait_for_text(browser, "connection", "closed (the job has ended)")


@pytest.mark.settings(demo_page=True)
async def test_a_refused_token_is_shown_with_the_reason(
    api: Client, browser: webdriver.Chrome
) -> None:
    app = await create_app_with_key(api)
    page = api.make_url(f"/demo#app={app['id']}&job=j1&token=hrst_not-a-token")
    await asyncio.to_thread(browser.get, str(page))
    await wait_for_text(
        browser, "connection", "refused (401: the stream token is not valid or has expired)"
    )


@pytest.mark.settings(demo_page=True)
async def test_a_token_for_another_job_is_shown_with_the_reason(
    api: Client, browser: webdriver.Chrome
) -> None:
    app = await create_app_with_key(api)
    response = await api.post(
        f"/v1/apps/{app['id']}/stream-tokens", json={"job_id": "j1"}, headers=bearer(app["api_key"])
    )
    token = (await response.json())["token"]
    page = api.make_url(f"/demo#app={app['id']}&job=j2&token={token}")
    await asyncio.to_thread(browser.get, str(page))
    await wait_for_text(
        browser, "connection", "refused (404: this stream token is for another job)"
    )


async def test_the_page_is_not_served_unless_turned_on(api: Client) -> None:
    response = await api.get("/demo")
    assert response.status == 404


@pytest.mark.settings(demo_page=True)
async def test_the_page_runs_only_its_own_scripts(api: Client) -> None:
    response = await api.get("/demo")
    assert response.status == 200
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert (await api.get("/demo/demo.js")).content_type == "text/javascript"
    assert (await api.get("/demo/secrets.txt")).status == 404
