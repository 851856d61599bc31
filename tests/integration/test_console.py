"""The console in a real browser (headless Chromium through Selenium) against the real API, a
real worker and a real receiver: the failed-delivery story from finding dead letters to watching
them recovered, a portal session that may only look, another app out of reach, and every action
reached by keyboard alone. Each screen is saved as a screenshot (HOOKRELAY_CONSOLE_SCREENSHOTS,
else the test's own directory)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from selenium import webdriver
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from hookrelay.settings import Settings
from tests.conftest import ADMIN_TOKEN
from tests.integration.api_calls import (
    ADMIN,
    add_endpoint,
    bearer,
    create_app_with_key,
    open_session,
    send_event,
    wait_for_delivery_status,
)
from tests.integration.browser import script_errors, wait_for
from tests.receiver import Fault, Receiver

Client = TestClient  # type: ignore[type-arg]
pytestmark = pytest.mark.usefixtures("worker", "no_script_errors")


# How the browser words a script's own mistakes, should one reach the notice.
BUG_SIGNS = ("is not defined", "is not a function", "Cannot read properties", "undefined")


@pytest.fixture
def no_script_errors(browser: webdriver.Chrome) -> Iterator[None]:
    """Every test of the console fails if a script of the page raised an error it did not
    catch, or one that the page caught and showed (a bug said in the notice), whatever the
    test itself looked at."""
    yield
    assert script_errors(browser) == []
    shown = browser.execute_script("return document.getElementById('notice')?.textContent ?? ''")
    assert not any(sign in shown for sign in BUG_SIGNS), shown


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    where = Path(os.environ.get("HOOKRELAY_CONSOLE_SCREENSHOTS") or tmp_path)
    where.mkdir(parents=True, exist_ok=True)
    return where


async def go(driver: webdriver.Chrome, url: str) -> None:
    await asyncio.to_thread(driver.get, url)


async def click(driver: webdriver.Chrome, css: str, text: str | None = None) -> None:
    def find_and_click() -> None:
        found = [
            e
            for e in driver.find_elements(By.CSS_SELECTOR, css)
            if text is None or e.text.strip() == text
        ]
        assert found, f"no {css} {text!r} to click"
        found[0].click()

    await asyncio.to_thread(find_and_click)


async def confirm(driver: webdriver.Chrome) -> None:
    """Say yes to the confirmation the last action asked for."""

    def accept() -> None:
        WebDriverWait(driver, 5).until(lambda d: d.switch_to.alert).accept()

    await asyncio.to_thread(accept)


def texts(driver: webdriver.Chrome, css: str) -> list[str]:
    return [e.text for e in driver.find_elements(By.CSS_SELECTOR, css)]


async def save(driver: webdriver.Chrome, shots: Path, name: str) -> None:
    await asyncio.to_thread(driver.save_screenshot, str(shots / f"{name}.png"))


async def sign_in_as_admin(api: Client, driver: webdriver.Chrome) -> None:
    await go(driver, str(api.make_url("/console")))
    await wait_for(driver, "#sign-in")
    field = driver.find_element(By.ID, "token-input")
    await asyncio.to_thread(field.send_keys, ADMIN_TOKEN, Keys.ENTER)
    await wait_for(driver, "#who", "admin")


async def failing_app(api: Client, receiver: Receiver, events: int) -> dict[str, Any]:
    """An app whose one endpoint answers 500 (until app["fault"] is fixed); its events dead."""
    fault = Fault(receiver)
    app = await create_app_with_key(api, "Image generator")
    endpoint = await add_endpoint(api, app, f"{receiver.url}/hooks", description="Renders")
    app["endpoint"], app["fault"] = endpoint, fault
    app["events"] = [
        await send_event(api, app, "job.completed", {"job_id": f"img-{n}", "output": {"n": n}})
        for n in range(events)
    ]
    for event in app["events"]:
        await wait_for_delivery_status(api, app, event["id"], "dead")
    return app


async def test_an_operator_finds_dry_runs_and_replays_dead_letters_from_the_console(
    api: Client, browser: webdriver.Chrome, receiver: Receiver, shots: Path
) -> None:
    app = await failing_app(api, receiver, 3)
    await sign_in_as_admin(api, browser)

    # Apps: the app with its failing endpoint and its dead letters.
    await wait_for(browser, "table", "Image generator")
    row = next(r for r in texts(browser, "tbody tr") if "Image generator" in r)
    assert row.split()[-3:] == ["1", "0", "3"]  # failing, disabled, dead letters
    await save(browser, shots, "1-apps")

    # The app's endpoints, then the endpoint's health.
    await click(browser, "a", "Image generator")
    await wait_for(browser, "h1", "Image generator")
    await save(browser, shots, "2-endpoints")
    await click(browser, "a", app["endpoint"]["url"])
    await wait_for(browser, ".card", "0%")
    assert any("3" in card and "still lost" in card for card in texts(browser, ".card"))
    await save(browser, shots, "3-endpoint")

    # Dead letters: three, a dry run counts them and sends nothing.
    await click(browser, ".tabs a", "Dead letters")
    await wait_for(browser, "caption", "Dead deliveries still lost")
    assert len(browser.find_elements(By.CSS_SELECTOR, "tbody tr")) == 3
    await click(browser, "button", "Count every match (dry run)")
    await wait_for(browser, "#replay-progress", "Dry run: 3 still lost")
    before = len(receiver.at("/hooks"))
    listed = await api.get(f"/v1/apps/{app['id']}/deliveries?status=dead", headers=ADMIN)
    assert [d["replayed_by"] for d in (await listed.json())["data"]] == [None] * 3  # none sent
    await save(browser, shots, "4-dead-letters")

    # The receiver is fixed; replay every match and watch them leave the list.
    app["fault"].fixed = True
    await click(browser, "button", "Replay every match")
    await confirm(browser)
    await wait_for(browser, "main p", "No dead letters")
    await receiver.wait_for(before + 3, "/hooks")
    replayed = receiver.at("/hooks")[before:]
    assert {r.headers["webhook-id"] for r in replayed} == {e["id"] for e in app["events"]}
    await save(browser, shots, "5-recovered")

    # One delivery: its event body and every attempt.
    await click(browser, ".tabs a", "Deliveries")
    await wait_for(browser, "caption", "Deliveries, newest first")
    await save(browser, shots, "6-deliveries")
    links = browser.find_elements(By.CSS_SELECTOR, "tbody tr td a")
    await asyncio.to_thread(links[-1].click)  # the oldest: a dead original
    await wait_for(browser, "caption", "Every attempt, in order")
    assert len(browser.find_elements(By.CSS_SELECTOR, "tbody tr")) == 3
    assert any("http_status" in t for t in texts(browser, "tbody td"))
    await save(browser, shots, "7-delivery")

    # Its job: the folded state and the timeline of events and deliveries.
    await click(browser, "dd a", "img-0")
    await wait_for(browser, ".timeline li", "job.completed")
    assert "completed" in browser.find_element(By.CSS_SELECTOR, "dl.facts").text
    await save(browser, shots, "8-job")


async def test_a_view_only_portal_session_sees_no_secret_and_cannot_replay(
    api: Client, browser: webdriver.Chrome, receiver: Receiver, shots: Path
) -> None:
    app = await failing_app(api, receiver, 1)
    other = await create_app_with_key(api, "Someone else")
    session = await open_session(api, app["id"], capabilities=[])
    await go(browser, session["url"])
    await wait_for(browser, "#who", "portal session")
    assert "token=" not in browser.current_url  # taken out of the address bar
    await wait_for(browser, "h1", "Image generator")

    await click(browser, "a", app["endpoint"]["url"])
    await wait_for(browser, ".card", "still lost")
    buttons = texts(browser, "main button")
    assert not {"Reveal the secret", "Rotate the secret", "Pause", "Recover"} & set(buttons)
    await save(browser, shots, "9-portal-view-only")
    await click(browser, ".tabs a", "Dead letters")
    await wait_for(browser, "caption", "Dead deliveries still lost")
    assert texts(browser, "main button") == ["Filter"]
    assert browser.find_elements(By.CSS_SELECTOR, "tbody input[type=checkbox]") == []

    # The API says the same to its token.
    token = bearer(session["token"])
    endpoint = f"/v1/apps/{app['id']}/endpoints/{app['endpoint']['id']}"
    assert (await api.get(f"{endpoint}/secret", headers=token)).status == 403
    replay = await api.post(f"/v1/apps/{app['id']}/deliveries/replay", json={}, headers=token)
    assert replay.status == 403

    # Another app does not exist for it.
    await go(browser, session["url"].split("#")[0] + f"#/apps/{other['id']}")
    await wait_for(browser, "main [role=alert]", "404")


def tab_through(driver: webdriver.Chrome, limit: int = 300) -> list[WebElement]:
    """The elements TAB reaches from the top of the page, in order, once round."""
    driver.execute_script("document.activeElement && document.activeElement.blur()")
    reached: list[WebElement] = []
    for _ in range(limit):
        ActionChains(driver).send_keys(Keys.TAB).perform()
        focused = driver.switch_to.active_element
        if reached and focused == reached[0]:
            break  # round again
        # A date field holds a stop for each of its parts: one element, several TABs.
        if focused.tag_name != "body" and (not reached or focused != reached[-1]):
            reached.append(focused)
    return reached


def actions(driver: webdriver.Chrome) -> list[WebElement]:
    """Every control of the page a user may act on."""
    found = driver.find_elements(By.CSS_SELECTOR, "a[href], button, input, select, textarea")
    return [e for e in found if e.is_displayed() and e.is_enabled()]


async def test_every_action_of_the_console_is_reached_by_keyboard(
    api: Client, browser: webdriver.Chrome, receiver: Receiver
) -> None:
    app = await failing_app(api, receiver, 1)
    await sign_in_as_admin(api, browser)
    base = str(api.make_url("/console"))
    screens = [
        (f"#/apps/{app['id']}", "h1", "Image generator"),
        (f"#/apps/{app['id']}/endpoints/{app['endpoint']['id']}", "h2", "Health"),
        (f"#/apps/{app['id']}/dead", "caption", "Dead deliveries still lost"),
        (f"#/apps/{app['id']}/deliveries", "caption", "Deliveries, newest first"),
    ]
    for hash_, css, text in screens:
        await go(browser, base + hash_)
        await wait_for(browser, css, text)
        reached = await asyncio.to_thread(tab_through, browser)
        missed = [e.text or e.get_attribute("name") for e in actions(browser) if e not in reached]
        assert missed == [], (hash_, missed)
        # At 200% zoom (half the width, as a 1280-pixel window zoomed twice lays out) nothing
        # runs off the side but a table, which scrolls in its own box.
        await asyncio.to_thread(browser.set_window_size, 640, 900)
        overflow = browser.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, (hash_, overflow)
        await asyncio.to_thread(browser.set_window_size, 1280, 900)
    # The dead letter is replayed with the keyboard alone.
    app["fault"].fixed = True
    await go(browser, base + f"#/apps/{app['id']}/dead")
    await wait_for(browser, "caption", "Dead deliveries still lost")
    replay_all = next(e for e in actions(browser) if e.text == "Replay every match")

    def press() -> None:
        browser.execute_script("document.activeElement && document.activeElement.blur()")
        for _ in range(100):
            ActionChains(browser).send_keys(Keys.TAB).perform()
            if browser.switch_to.active_element == replay_all:
                break
        assert browser.switch_to.active_element == replay_all
        ActionChains(browser).send_keys(Keys.ENTER).perform()

    await asyncio.to_thread(press)
    await confirm(browser)
    await wait_for(browser, "main p", "No dead letters")


async def test_a_disabled_endpoint_is_enabled_and_recovers_what_it_missed_in_one_step(
    api: Client, browser: webdriver.Chrome, receiver: Receiver, settings: Settings
) -> None:
    app = await failing_app(api, receiver, 2)
    endpoint = app["endpoint"]
    connection = await asyncpg.connect(settings.database_url)
    try:
        await connection.execute(
            "UPDATE endpoints SET status = 'disabled', disabled_reason = 'every attempt failed'"
            " WHERE id = $1",
            endpoint["id"],
        )
    finally:
        await connection.close()
    app["fault"].fixed = True
    await sign_in_as_admin(api, browser)
    await go(browser, str(api.make_url(f"/console#/apps/{app['id']}/endpoints/{endpoint['id']}")))
    await wait_for(browser, "fieldset", "every attempt failed")
    before = len(receiver.at("/hooks"))
    await click(browser, "fieldset button", "Enable")
    await wait_for(browser, "#notice", "2 dead deliveries it missed are on their way again")
    await receiver.wait_for(before + 2, "/hooks")
    assert {r.headers["webhook-id"] for r in receiver.at("/hooks")[before:]} == {
        e["id"] for e in app["events"]
    }
    await wait_for(browser, "dd .status", "active")


# What a console must survive: hostile data, quick navigation, a session that ends under it.

COUNT_LONG_POLLS = """
window.longPolls = 0;
const realFetch = window.fetch;
window.fetch = (url, options) => {
  const longPoll = String(url).includes("wait=");
  if (longPoll) window.longPolls += 1;
  return realFetch(url, options).finally(() => { if (longPoll) window.longPolls -= 1; });
};
"""
HOSTILE = '<img src=x onerror="window.pwned = true">'


async def test_what_tenants_stored_is_shown_as_text_never_run(
    api: Client, browser: webdriver.Chrome, receiver: Receiver
) -> None:
    receiver.respond = lambda _: _answer_with(HOSTILE)
    app = await create_app_with_key(api, HOSTILE)
    endpoint = await add_endpoint(api, app, f"{receiver.url}/x", description=HOSTILE)
    event = await send_event(api, app, "job.completed", {"job_id": "j", "output": HOSTILE})
    delivered = await wait_for_delivery_status(api, app, event["id"], "succeeded")
    await sign_in_as_admin(api, browser)
    base = str(api.make_url("/console"))
    for hash_, text in (
        (f"#/apps/{app['id']}", HOSTILE),
        (f"#/apps/{app['id']}/endpoints/{endpoint['id']}", HOSTILE),
        (f"#/apps/{app['id']}/deliveries/{delivered['deliveries'][0]['id']}", HOSTILE),
    ):
        await go(browser, base + hash_)
        await wait_for(browser, "main", text)
    assert browser.execute_script("return window.pwned === undefined") is True


async def _answer_with(body: str) -> web.Response:
    return web.Response(text=body)


async def test_quick_navigation_leaves_one_long_poll_and_the_last_screen(
    api: Client, browser: webdriver.Chrome
) -> None:
    app = await create_app_with_key(api, "Quick")
    await sign_in_as_admin(api, browser)
    browser.execute_script(COUNT_LONG_POLLS)
    hashes = [f"#/apps/{app['id']}/{screen}" for screen in ("deliveries", "dead", "deliveries")]
    browser.execute_script(
        "for (const h of arguments[0]) { location.hash = h; await new Promise("
        "r => setTimeout(r, 20)); }",
        [*hashes, f"#/apps/{app['id']}/dead"],
    )
    await wait_for(browser, "h1", "Dead letters")
    await asyncio.sleep(1.5)  # every view that was loading has finished by now
    assert browser.execute_script("return window.longPolls") == 1
    assert texts(browser, "h1") == ["Dead letters"]


async def test_a_session_ended_under_the_console_signs_it_out_and_stops_asking(
    api: Client, browser: webdriver.Chrome
) -> None:
    app = await create_app_with_key(api, "Ending")
    session = await open_session(api, app["id"])
    await go(browser, session["url"])
    await wait_for(browser, "h1", "Ending")
    browser.execute_script(COUNT_LONG_POLLS)
    await go(browser, str(api.make_url(f"/console#/apps/{app['id']}/deliveries")))
    await wait_for(browser, "h1", "Deliveries")
    await api.delete(f"/v1/apps/{app['id']}/portal-sessions", headers=ADMIN)
    await send_event(api, app, "image.ready", {})  # news: the screen asks again, and is refused
    await wait_for(browser, "[role=alert]", "Your session has ended")
    field = browser.find_element(By.ID, "token-input")
    await asyncio.to_thread(field.send_keys, "half typed")
    await asyncio.sleep(4)  # longer than a refresh: nothing redraws the form
    assert browser.find_element(By.ID, "token-input").get_attribute("value") == "half typed"
    assert browser.execute_script("return window.longPolls") == 0
    assert texts(browser, "#who") == [""]  # nobody is signed in any more
    assert not browser.find_element(By.ID, "sign-out").is_displayed()


async def test_a_portal_link_opened_in_a_signed_in_tab_signs_in_with_it(
    api: Client, browser: webdriver.Chrome
) -> None:
    app = await create_app_with_key(api, "Linked")
    session = await open_session(api, app["id"])
    await sign_in_as_admin(api, browser)
    await go(browser, session["url"])
    await wait_for(browser, "#who", "portal session")
    assert "token=" not in browser.current_url
    await wait_for(browser, "h1", "Linked")


async def test_replays_of_selected_dead_letters_are_watched_until_they_end(
    api: Client, browser: webdriver.Chrome, receiver: Receiver
) -> None:
    app = await failing_app(api, receiver, 2)
    app["fault"].fixed = True
    await sign_in_as_admin(api, browser)
    await go(browser, str(api.make_url(f"/console#/apps/{app['id']}/dead")))
    await wait_for(browser, "caption", "Dead deliveries still lost")
    for box in browser.find_elements(By.CSS_SELECTOR, "tbody input[type=checkbox]"):
        await asyncio.to_thread(box.click)
    await click(browser, "button", "Replay selected (2)")
    await confirm(browser)
    await wait_for(browser, "#notice", "Replaying 2 deliveries.")
    await wait_for(browser, "main p", "No dead letters")
    await wait_for(browser, "#replay-progress", "Every replay has ended.")


async def test_an_endpoint_changed_in_the_console_is_named_anew_everywhere(
    api: Client, browser: webdriver.Chrome, receiver: Receiver
) -> None:
    app = await create_app_with_key(api, "Renamed")
    endpoint = await add_endpoint(api, app, f"{receiver.url}/before")
    await sign_in_as_admin(api, browser)
    await go(browser, str(api.make_url(f"/console#/apps/{app['id']}/endpoints/{endpoint['id']}")))
    await wait_for(browser, "legend", "Change the endpoint")
    field = browser.find_element(By.CSS_SELECTOR, "input[name=url]")
    await asyncio.to_thread(field.clear)
    await asyncio.to_thread(field.send_keys, f"{receiver.url}/after")
    await click(browser, "button", "Save")
    await wait_for(browser, "#notice", "Saved.")
    await wait_for(browser, "#trail", "/after")
    await wait_for(browser, "h1", "/after")
    assert "/before" not in browser.find_element(By.ID, "trail").text
