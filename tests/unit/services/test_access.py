"""Scoped app keys and portal sessions on the in-memory fakes: what each scope and capability
grants, credentials that hand on no more than they hold, sessions that end when they expire or
are ended, and at once on this process."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hookrelay.errors import Forbidden, InvalidPayload
from hookrelay.services.access import (
    ALL_GRANTS,
    CAPABILITIES,
    SCOPES,
    Capability,
    Grant,
    Scope,
    grants_of_capabilities,
    grants_of_scopes,
    what_gives,
    with_view,
)
from hookrelay.services.apps import Apps
from hookrelay.services.auth import ADMIN, PORTAL_TOKEN_PREFIX, Auth, Principal
from hookrelay.settings import Settings
from tests.fakes import FakeStore, RecordingNotices
from tests.unit.services.conftest import Rig
from tests.unit.services.test_auth import auth_with_clocks


async def key_with(rig: Rig, *scopes: str) -> tuple[str, Principal]:
    """An app, and the principal of a new key of it with `scopes`."""
    app, _ = await rig.apps.create_app(ADMIN, {"name": "acme"})
    _, key = await rig.apps.create_app_key(ADMIN, app.id, {"scopes": list(scopes)})
    principal = await rig.auth.authenticate(key)
    assert principal is not None
    return app.id, principal


# What scopes and capabilities grant


def test_publish_sends_and_reads_events_and_nothing_else() -> None:
    assert grants_of_scopes([Scope.PUBLISH]) == {Grant.SEND_EVENTS, Grant.READ_EVENTS}


def test_manage_does_everything_inside_the_app_but_send_events() -> None:
    assert grants_of_scopes([Scope.MANAGE]) == ALL_GRANTS - {Grant.SEND_EVENTS}


def test_read_reads_everything_but_secrets() -> None:
    read = grants_of_scopes([Scope.READ])
    assert read == {Grant.READ_EVENTS, Grant.READ, Grant.READ_KEYS}
    assert Grant.READ_SECRETS not in read


def test_the_three_scopes_together_are_everything() -> None:
    assert grants_of_scopes(SCOPES) == ALL_GRANTS


def test_no_capability_reads_keys_manages_the_app_or_sends_events() -> None:
    every_capability = grants_of_capabilities(CAPABILITIES)
    assert every_capability.isdisjoint({Grant.READ_KEYS, Grant.MANAGE_APP, Grant.SEND_EVENTS})


def test_view_is_always_a_sessions_first_capability_and_none_is_repeated() -> None:
    assert with_view([]) == ["view"]
    assert with_view(["replay", "view", "manage_endpoints", "replay"]) == [
        "view",
        "manage_endpoints",
        "replay",
    ]


# Scoped keys


async def test_a_new_apps_first_key_holds_every_scope(rig: Rig) -> None:
    app, key = await rig.apps.create_app(ADMIN, {"name": "acme"})
    [stored] = rig.store.keys.values()
    assert stored.scopes == ["publish", "manage", "read"]
    assert await rig.auth.authenticate(key) == Principal(app.id, ALL_GRANTS)


async def test_a_key_made_with_scopes_holds_those_grants_and_lists_them_in_order(
    rig: Rig,
) -> None:
    app, _ = await rig.apps.create_app(ADMIN, {"name": "acme"})
    made, key = await rig.apps.create_app_key(ADMIN, app.id, {"scopes": ["read", "publish"]})
    assert made.scopes == ["publish", "read"]
    assert await rig.auth.authenticate(key) == Principal(
        app.id, grants_of_scopes(["publish", "read"])
    )


@pytest.mark.parametrize("body", [{"scopes": []}, {"scopes": ["admin"]}, {"scopes": "read"}])
async def test_unknown_or_no_scopes_are_refused_before_anything_is_written(
    rig: Rig, body: dict[str, object]
) -> None:
    app, _ = await rig.apps.create_app(ADMIN, {"name": "acme"})
    rig.store.calls.clear()
    with pytest.raises(InvalidPayload):
        await rig.apps.create_app_key(ADMIN, app.id, body)
    assert rig.store.calls == []


async def test_a_manage_key_cannot_make_a_key_that_sends_events(rig: Rig) -> None:
    app_id, manager = await key_with(rig, "manage")
    keys_before = len(rig.store.keys)
    for body in ({"scopes": ["publish"]}, {}):  # {}: every scope, publish among them
        with pytest.raises(Forbidden) as refused:
            await rig.apps.create_app_key(manager, app_id, body)
        assert refused.value.details == {"missing": ["send_events"]}
    assert len(rig.store.keys) == keys_before
    made, _ = await rig.apps.create_app_key(manager, app_id, {"scopes": ["read"]})
    assert made.scopes == ["read"]


async def test_a_manage_key_revokes_a_read_key_but_not_one_that_sends_events(rig: Rig) -> None:
    app_id, manager = await key_with(rig, "manage")
    reader, _ = await rig.apps.create_app_key(ADMIN, app_id, {"scopes": ["read"]})
    publisher, publisher_key = await rig.apps.create_app_key(ADMIN, app_id, {"scopes": ["publish"]})
    with pytest.raises(Forbidden):
        await rig.apps.revoke_app_key(manager, app_id, publisher.id)
    assert await rig.auth.authenticate(publisher_key) is not None
    revoked = await rig.apps.revoke_app_key(manager, app_id, reader.id)
    assert revoked.revoked_at is not None


# Portal sessions


async def test_a_portal_session_opens_its_app_with_its_capabilities_grants(rig: Rig) -> None:
    app, _ = await rig.apps.create_app(ADMIN, {"name": "acme"})
    session, token = await rig.apps.open_portal_session(ADMIN, app.id, {"capabilities": ["replay"]})
    assert token.startswith(PORTAL_TOKEN_PREFIX) and len(token) > 40
    assert session.capabilities == ["view", "replay"]
    assert await rig.auth.authenticate(token) == Principal(
        app.id,
        grants_of_capabilities(["view", "replay"]),
        portal_session=True,
        expires_at=session.expires_at,
    )
    assert token.encode() not in b"".join(rig.store.sessions)  # stored as a hash


async def test_a_portal_session_has_every_capability_unless_told_and_lasts_an_hour(
    rig: Rig,
) -> None:
    app, _ = await rig.apps.create_app(ADMIN, {"name": "acme"})
    session, _ = await rig.apps.open_portal_session(ADMIN, app.id, {})
    assert session.capabilities == list(Capability)
    lasts = session.expires_at - session.created_at
    assert timedelta(minutes=59) < lasts <= timedelta(hours=1, seconds=1)


@pytest.mark.parametrize(
    "body",
    [{"expires_in": 59}, {"expires_in": 7 * 86400 + 1}, {"capabilities": ["send_events"]}],
)
async def test_a_session_too_short_too_long_or_sending_events_is_refused(
    rig: Rig, body: dict[str, object]
) -> None:
    app, _ = await rig.apps.create_app(ADMIN, {"name": "acme"})
    with pytest.raises(InvalidPayload):
        await rig.apps.open_portal_session(ADMIN, app.id, body)
    assert rig.store.sessions == {}


async def test_a_key_opens_no_session_with_a_capability_it_lacks(rig: Rig) -> None:
    app_id, reader = await key_with(rig, "read")
    with pytest.raises(Forbidden) as refused:
        await rig.apps.open_portal_session(reader, app_id, {"capabilities": ["replay"]})
    assert refused.value.details == {"missing": ["replay"]}
    assert rig.store.sessions == {}


async def test_a_portal_session_ends_when_it_expires_even_while_cached(
    settings: Settings,
) -> None:
    store = FakeStore()
    auth, clocks = auth_with_clocks(settings, store)
    apps = Apps(store.as_apps, auth.revoked)
    app = store.add_app()
    session, token = await apps.open_portal_session(ADMIN, app.id, {"expires_in": 60})
    clocks.wall = session.expires_at.timestamp() - 1
    assert await auth.authenticate(token) is not None  # now cached
    clocks.wall += 1
    assert await auth.authenticate(token) is None


async def test_ending_an_apps_sessions_refuses_them_at_once_and_announces_it(
    settings: Settings,
) -> None:
    store, notices = FakeStore(), RecordingNotices()
    auth = Auth(settings, store.as_apps, notices.announce_revocation)
    apps = Apps(store.as_apps, auth.revoked)
    app, key = await apps.create_app(ADMIN, {"name": "acme"})
    _, token = await apps.open_portal_session(ADMIN, app.id, {})
    assert await auth.authenticate(token) is not None  # cached
    assert await apps.end_portal_sessions(app.id) == 1
    assert await auth.authenticate(token) is None
    assert await auth.authenticate(key) is not None  # the app's keys are not touched
    assert notices.revoked_apps == [app.id]


async def test_deleting_an_app_ends_its_sessions(rig: Rig) -> None:
    app, _ = await rig.apps.create_app(ADMIN, {"name": "acme"})
    _, token = await rig.apps.open_portal_session(ADMIN, app.id, {})
    assert await rig.auth.authenticate(token) is not None
    await rig.apps.delete_app(app.id)
    assert await rig.auth.authenticate(token) is None


# Stream tokens end with the key or session that issued them


async def test_a_stream_token_stops_opening_once_its_key_is_revoked(rig: Rig) -> None:
    app, _ = await rig.apps.create_app(ADMIN, {"name": "acme"})
    made, key = await rig.apps.create_app_key(ADMIN, app.id, {"scopes": ["publish"]})
    issuer = await rig.auth.authenticate(key)
    assert issuer is not None
    token, grant = rig.auth.issue_stream_token(app.id, {}, issuer)
    assert grant.issued_by == issuer.issuer_ref
    assert key not in token  # the key's hash, never the key
    assert await rig.auth.authenticate_stream_token(token) is not None
    await rig.apps.revoke_app_key(ADMIN, app.id, made.id)
    assert await rig.auth.authenticate_stream_token(token) is None


async def test_a_sessions_stream_token_ends_no_later_than_it_and_with_its_ending(
    rig: Rig,
) -> None:
    app, _ = await rig.apps.create_app(ADMIN, {"name": "acme"})
    session, session_token = await rig.apps.open_portal_session(ADMIN, app.id, {"expires_in": 120})
    issuer = await rig.auth.authenticate(session_token)
    assert issuer is not None
    token, grant = rig.auth.issue_stream_token(app.id, {"expires_in": 3600}, issuer)
    assert grant.expires_at == int(session.expires_at.timestamp())
    assert await rig.auth.authenticate_stream_token(token) is not None
    await rig.apps.end_portal_sessions(app.id)
    assert await rig.auth.authenticate_stream_token(token) is None


async def test_a_stream_token_for_another_app_than_its_issuers_opens_nothing(rig: Rig) -> None:
    mine, _ = await rig.apps.create_app(ADMIN, {"name": "mine"})
    theirs, _ = await rig.apps.create_app(ADMIN, {"name": "theirs"})
    _, key = await rig.apps.create_app_key(ADMIN, mine.id, {"scopes": ["publish"]})
    issuer = await rig.auth.authenticate(key)
    assert issuer is not None
    token, _ = rig.auth.issue_stream_token(theirs.id, {}, issuer)
    assert await rig.auth.authenticate_stream_token(token) is None


def test_a_refusal_names_what_would_give_the_grant_in_the_credentials_own_words() -> None:
    assert what_gives([Grant.READ_SECRETS], portal_session=True) == (
        "read_secrets (given by the capability view_secrets)"
    )
    assert what_gives([Grant.READ_SECRETS], portal_session=False) == (
        "read_secrets (given by the scope manage)"
    )
    assert what_gives([Grant.MANAGE_APP], portal_session=True) == "manage_app"
