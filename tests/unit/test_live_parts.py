"""The pure parts of live reading: stream tokens, log cursors, and a tail's memory."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from unittest import mock

import pytest
from aiohttp.test_utils import make_mocked_request

from hookrelay.api.handlers.stream import encode_events
from hookrelay.api.http import client_gone, log_cursor, parse_log_cursor
from hookrelay.errors import BadRequest
from hookrelay.events import build_event
from hookrelay.live import feed
from hookrelay.live.feed import Tail
from hookrelay.live.tokens import StreamGrant, issue_token, verify_token
from hookrelay.models import Event, LogFilter, LogRead
from hookrelay.settings import Settings

KEY, OLD_KEY = b"k" * 32, b"o" * 32


def test_a_token_carries_its_grant_until_it_expires() -> None:
    grant = StreamGrant("app_1", "job_1", 1_000)
    token = issue_token(KEY, grant)
    assert token.startswith("hrst_")
    assert verify_token((KEY,), token, now=999) == grant
    assert verify_token((KEY,), token, now=1_000) is None


def test_a_token_signed_with_an_old_key_still_opens_a_stream_during_key_rotation() -> None:
    token = issue_token(OLD_KEY, StreamGrant("app_1", None, 1_000))
    assert verify_token((KEY, OLD_KEY), token, now=0) is not None
    assert verify_token((KEY,), token, now=0) is None


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t + "A",
        lambda t: t.replace("hrst_", "hrsx_"),
        lambda t: t[:-3],
        lambda t: t.split(".")[0],
        lambda t: "x",
    ],
)
def test_a_changed_token_is_refused(mangle: object) -> None:
    token = issue_token(KEY, StreamGrant("app_1", None, 1_000))
    assert verify_token((KEY,), mangle(token), now=0) is None  # type: ignore[operator]


def test_a_token_cannot_be_re_scoped_to_another_app() -> None:
    token = issue_token(KEY, StreamGrant("app_1", None, 1_000))
    other = issue_token(KEY, StreamGrant("app_2", None, 1_000))
    swapped = other.split(".")[0] + "." + token.split(".")[1]
    assert verify_token((KEY,), swapped, now=0) is None


SETTINGS = Settings(secret_key=KEY, old_secret_keys=(OLD_KEY,))
POSITION = (987_654_321, "evt_" + "ab" * 16)


@pytest.mark.parametrize("position", [(0, ""), (17, ""), POSITION, (2**64 - 1, "evt_" + "f" * 32)])
def test_a_log_cursor_round_trips(position: tuple[int, str]) -> None:
    cursor = log_cursor(SETTINGS, "app_1", position)
    assert parse_log_cursor(SETTINGS, "app_1", cursor) == position


def _spellings(number: int) -> list[bytes]:
    """Every way a transaction id could sit inside a cursor's bytes or text."""
    return [
        str(number).encode(),
        f"{number:x}".encode(),
        *(number.to_bytes(n, order) for n in (4, 8) for order in ("big", "little")),
    ]


def test_a_log_cursor_does_not_show_its_transaction_id() -> None:
    cursor = log_cursor(SETTINGS, "app_1", POSITION)
    decodings = [cursor.encode()]
    for decode in (base64.urlsafe_b64decode, base64.b64decode):
        decodings.append(decode(cursor + "=" * (-len(cursor) % 4)))
    for decoded in decodings:
        for spelling in _spellings(POSITION[0]):
            assert spelling not in decoded
    assert b"ab" * 16 not in decodings[1] and "ab" * 16 not in cursor


def test_log_cursors_of_neighbouring_positions_share_nothing_readable() -> None:
    first = log_cursor(SETTINGS, "app_1", (100, ""))
    second = log_cursor(SETTINGS, "app_1", (101, ""))
    assert first != second
    assert sum(a == b for a, b in zip(first, second, strict=True)) < len(first) // 2


def test_a_log_cursor_of_another_app_is_a_bad_request() -> None:
    cursor = log_cursor(SETTINGS, "app_1", POSITION)
    with pytest.raises(BadRequest):
        parse_log_cursor(SETTINGS, "app_2", cursor)


def test_a_log_cursor_sealed_with_an_old_key_is_still_taken_during_key_rotation() -> None:
    cursor = log_cursor(Settings(secret_key=OLD_KEY), "app_1", POSITION)
    assert parse_log_cursor(SETTINGS, "app_1", cursor) == POSITION
    with pytest.raises(BadRequest):
        parse_log_cursor(Settings(secret_key=KEY), "app_1", cursor)


def test_every_changed_character_of_a_log_cursor_makes_it_a_bad_request() -> None:
    cursor = log_cursor(SETTINGS, "app_1", POSITION)
    for n, character in enumerate(cursor):
        changed = cursor[:n] + ("A" if character != "A" else "B") + cursor[n + 1 :]
        with pytest.raises(BadRequest):
            parse_log_cursor(SETTINGS, "app_1", changed)


@pytest.mark.parametrize("raw", ["", "abc", "MTox", "-1:", "MTp4eXo", "A" * 54, "A" * 32, "!" * 40])
def test_a_made_up_log_cursor_is_a_bad_request(raw: str) -> None:
    with pytest.raises(BadRequest):
        parse_log_cursor(SETTINGS, "app_1", raw)


def test_a_cursor_given_out_before_cursors_were_sealed_resumes_after_its_event() -> None:
    """Its transaction number is not trusted: whatever it says, the cursor stands for its
    event id, which is then looked up as `after=<event id>` is."""
    for number in (POSITION[0], 0, 2**63):
        legacy = base64.urlsafe_b64encode(f"{number}:{POSITION[1]}".encode()).decode()
        assert parse_log_cursor(SETTINGS, "app_1", legacy.rstrip("=")) == POSITION[1]


def test_a_cursor_given_out_before_cursors_were_sealed_without_an_event_is_refused() -> None:
    legacy = base64.urlsafe_b64encode(f"{POSITION[0]}:".encode()).decode()
    with pytest.raises(BadRequest, match="last event"):
        parse_log_cursor(SETTINGS, "app_1", legacy.rstrip("="))


def event(tx: int, event_type: str = "image.ready", body_bytes: int = 10) -> Event:
    made = build_event("app_1", event_type, {"pad": "x" * body_bytes}, None, datetime.now(UTC))
    return Event(made.id, made.app_id, made.type, None, made.body, made.created_at, tx)


def test_events_are_framed_as_server_sent_events() -> None:
    first, second = event(1), event(2, "job.queued")
    assert b"".join(encode_events([first, second])).decode() == (
        f"id: {first.id}\nevent: image.ready\ndata: {first.body}\n\n"
        f"id: {second.id}\nevent: job.queued\ndata: {second.body}\n\n"
    )


async def test_a_tail_serves_readers_inside_it_and_sends_the_others_to_postgres() -> None:
    tail = Tail("app_1", position=(10, ""), floor=(10, ""))
    events = [event(11), event(12, "job.queued"), event(13)]
    tail.advance(LogRead(events, (14, "")))
    assert tail.read_after((9, ""), LogFilter(), 10) is None  # from before the tail
    everything = tail.read_after((10, ""), LogFilter(), 10)
    assert everything == LogRead(events, (14, ""))
    assert tail.read_after(events[0].position, LogFilter(), 1) == LogRead(
        [events[1]], events[1].position
    )
    narrowed = tail.read_after((10, ""), LogFilter(types=frozenset({"job.queued"})), 10)
    assert narrowed == LogRead([events[1]], (14, ""))
    # A reader ahead of the tail (its own read saw a later horizon) stays where it is.
    assert tail.read_after((20, ""), LogFilter(), 10) == LogRead([], (20, ""))


async def test_a_tail_keeps_its_memory_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(feed, "TAIL_MAX_EVENTS", 5)
    monkeypatch.setattr(feed, "TAIL_MAX_BYTES", 2_000)
    tail = Tail("app_1", position=(0, ""), floor=(0, ""))
    events = [event(n, body_bytes=300) for n in range(1, 21)]
    for start in range(0, 20, 4):
        tail.advance(LogRead(events[start : start + 4], events[start + 3].position))
        assert len(tail.events) <= 5
        assert tail.size <= 2_000
    assert tail.events == events[-len(tail.events) :]
    assert tail.floor == events[-len(tail.events) - 1].position
    assert tail.read_after(events[0].position, LogFilter(), 100) is None


def _token_whose_mac_uses_the_url_safe_characters() -> str:
    """A valid token whose signature holds `-` or `_` (where standard base64 has + and /)."""
    for expires_at in range(1_000, 2_000):
        token = issue_token(KEY, StreamGrant("app_1", None, expires_at))
        if {"-", "_"} & set(token.split(".")[1]):
            return token
    raise AssertionError("no such token in a thousand")


def _other_trailing_bits(text: str) -> str:
    """The same bytes in base64 with the unused low bits of the last character set."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(text[-1])
    return text[:-1] + alphabet[last | 0b11]


@pytest.mark.parametrize(
    "variant",
    [
        pytest.param(lambda t: t + "=", id="padded"),
        pytest.param(lambda t: t + "==", id="padded-twice"),
        pytest.param(lambda t: t.replace("-", "+").replace("_", "/"), id="standard-alphabet"),
        pytest.param(lambda t: t[:-6] + "!" + t[-6:], id="junk-character"),
        pytest.param(lambda t: t[:-6] + "\n" + t[-6:], id="line-break"),
        pytest.param(lambda t: t[:-6] + "=" + t[-6:], id="inner-padding"),
        pytest.param(_other_trailing_bits, id="trailing-bits"),
    ],
)
def test_only_the_canonical_spelling_of_a_token_opens_a_stream(variant: object) -> None:
    token = _token_whose_mac_uses_the_url_safe_characters()
    claims, mac = token.split(".")
    changed = f"{claims}.{variant(mac)}"  # type: ignore[operator]
    assert changed != token
    assert verify_token((KEY,), token, now=0) is not None
    assert verify_token((KEY,), changed, now=0) is None


async def test_a_client_gone_before_its_handler_waits_is_seen_at_once() -> None:
    # The server says so only when the connection closes: a handler that asks later must see
    # that it already has.
    closing, connected = mock.Mock(), mock.Mock()
    closing.is_closing.return_value, connected.is_closing.return_value = True, False
    assert client_gone(make_mocked_request("GET", "/", transport=closing)).done()
    request = make_mocked_request("GET", "/", transport=connected)
    gone = client_gone(request)
    assert not gone.done()
    assert client_gone(request) is gone  # one per request, which the server resolves
