"""Authentication on the in-memory fakes: the admin token, app keys through the key cache,
revocations, stream tokens; and which app a caller may name."""

from __future__ import annotations

import hmac
from dataclasses import replace

import pytest

from hookrelay.errors import InvalidPayload, NotFound
from hookrelay.keycache import KEY_CACHE_TTL_S
from hookrelay.live.tokens import StreamGrant, issue_token
from hookrelay.services.access import ALL_GRANTS
from hookrelay.services.auth import (
    ADMIN,
    STREAM_GRANTS,
    Auth,
    Principal,
    hash_token,
    new_app_key,
)
from hookrelay.settings import Settings
from tests.fakes import FakeStore, RecordingNotices
from tests.unit.services.conftest import ADMIN_TOKEN, Rig


class Clocks:
    """A wall clock and a monotonic clock that tests move by hand."""

    def __init__(self) -> None:
        self.wall = 1_700_000_000.0
        self.monotonic = 0.0


def auth_with_clocks(settings: Settings, store: FakeStore) -> tuple[Auth, Clocks]:
    clocks = Clocks()
    auth = Auth(
        settings,
        store.as_apps,
        RecordingNotices().announce_revocation,
        clock=lambda: clocks.wall,
        monotonic=lambda: clocks.monotonic,
    )
    return auth, clocks


def app_with_key(store: FakeStore, name: str = "acme", uid: str | None = None) -> tuple[str, str]:
    """An app and one of its keys."""
    app = store.add_app(name, uid)
    key = new_app_key()
    store.add_key(app.id, key)
    return app.id, key


# The admin token


async def test_the_admin_token_is_the_admin_without_a_query(rig: Rig) -> None:
    assert await rig.auth.authenticate(ADMIN_TOKEN) == ADMIN
    assert rig.store.calls == []


async def test_the_admin_token_is_compared_in_constant_time(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    compared: list[tuple[bytes, bytes]] = []
    real_compare_digest = hmac.compare_digest

    def compare_digest(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real_compare_digest(a, b)

    monkeypatch.setattr(hmac, "compare_digest", compare_digest)
    assert await rig.auth.authenticate(ADMIN_TOKEN) == ADMIN
    assert compared == [(ADMIN_TOKEN.encode(), ADMIN_TOKEN.encode())]


async def test_a_token_one_character_off_the_admin_token_is_nobody(rig: Rig) -> None:
    assert await rig.auth.authenticate(ADMIN_TOKEN[:-1] + "X") is None
    assert rig.store.calls == []  # not an app key either: never looked up


async def test_without_an_admin_token_configured_no_token_is_the_admin(rig: Rig) -> None:
    auth = Auth(Settings(secret_key=bytes(32)), rig.store.as_apps, rig.notices.announce_revocation)
    assert await auth.authenticate("") is None
    assert await auth.authenticate(ADMIN_TOKEN) is None


# App keys and the key cache


async def test_an_app_key_is_its_app(rig: Rig) -> None:
    app_id, key = app_with_key(rig.store)
    assert await rig.auth.authenticate(key) == Principal(app_id, ALL_GRANTS)


async def test_an_app_key_is_looked_up_once_then_served_from_the_cache(rig: Rig) -> None:
    _, key = app_with_key(rig.store)
    await rig.auth.authenticate(key)
    await rig.auth.authenticate(key)
    assert rig.store.calls == ["credential_of_key"]


async def test_an_unknown_key_is_nobody_and_remembered_as_unknown(rig: Rig) -> None:
    unknown = new_app_key()
    assert await rig.auth.authenticate(unknown) is None
    assert await rig.auth.authenticate(unknown) is None
    assert rig.store.calls == ["credential_of_key"]


async def test_a_cached_key_is_looked_up_again_after_the_cache_ttl(settings: Settings) -> None:
    store = FakeStore()
    auth, clocks = auth_with_clocks(settings, store)
    _, key = app_with_key(store)
    await auth.authenticate(key)
    clocks.monotonic += KEY_CACHE_TTL_S
    await auth.authenticate(key)
    assert store.calls == ["credential_of_key", "credential_of_key"]


async def test_a_revoked_key_is_nobody(rig: Rig) -> None:
    app_id, key = app_with_key(rig.store)
    key_hash = hash_token(key)
    rig.store.keys[key_hash] = replace(
        rig.store.keys[key_hash], revoked_at=rig.store.apps[app_id].created_at
    )
    assert await rig.auth.authenticate(key) is None


async def test_a_revocation_forgets_the_cached_keys_of_its_app_at_once(rig: Rig) -> None:
    app_id, key = app_with_key(rig.store)
    await rig.auth.authenticate(key)  # cached as valid
    await rig.store.as_apps.revoke_key(app_id, rig.store.keys[hash_token(key)].id)
    await rig.auth.revoked(app_id)
    assert await rig.auth.authenticate(key) is None
    assert rig.notices.revoked_apps == [app_id]


async def test_a_revocation_keeps_other_apps_keys_cached(rig: Rig) -> None:
    app_id, _ = app_with_key(rig.store, "a")
    _, other_key = app_with_key(rig.store, "b")
    await rig.auth.authenticate(other_key)
    await rig.auth.revoked(app_id)
    await rig.auth.authenticate(other_key)
    assert rig.store.calls == ["credential_of_key"]


async def test_a_token_without_the_app_key_prefix_is_never_looked_up(rig: Rig) -> None:
    assert await rig.auth.authenticate("sk_live_something") is None
    assert rig.store.calls == []


# Stream tokens


async def test_a_stream_token_opens_its_apps_stream_of_its_job(rig: Rig) -> None:
    token, grant = rig.auth.issue_stream_token("app_1", {"job_id": "job_1"}, ADMIN)
    assert await rig.auth.authenticate_stream_token(token) == Principal(
        "app_1", STREAM_GRANTS, "job_1", stream_token=True
    )
    assert (grant.app_id, grant.job_id) == ("app_1", "job_1")


async def test_a_stream_token_is_valid_until_it_expires_and_not_after(
    settings: Settings,
) -> None:
    auth, clocks = auth_with_clocks(settings, FakeStore())
    token, grant = auth.issue_stream_token("app_1", {"expires_in": 60}, ADMIN)
    assert grant.expires_at == int(clocks.wall + 60)
    clocks.wall += 59
    assert await auth.authenticate_stream_token(token) is not None
    clocks.wall += 1
    assert await auth.authenticate_stream_token(token) is None


async def test_a_stream_token_lasts_the_configured_ttl_by_default(settings: Settings) -> None:
    auth, clocks = auth_with_clocks(replace(settings, stream_token_ttl_s=120.0), FakeStore())
    _, grant = auth.issue_stream_token("app_1", {}, ADMIN)
    assert grant.expires_at == int(clocks.wall + 120)


async def test_a_stream_token_signed_with_another_key_is_refused(rig: Rig) -> None:
    forged = issue_token(bytes(32), StreamGrant("app_1", None, 2_000_000_000))
    assert await rig.auth.authenticate_stream_token(forged) is None


async def test_a_stream_token_signed_with_an_old_secret_key_is_still_valid(
    settings: Settings,
) -> None:
    old_key = bytes(range(1, 33))
    auth = Auth(
        replace(settings, old_secret_keys=(old_key,)),
        FakeStore().as_apps,
        RecordingNotices().announce_revocation,
    )
    token = issue_token(old_key, StreamGrant("app_1", None, 2_000_000_000))
    assert await auth.authenticate_stream_token(token) is not None


async def test_a_tampered_stream_token_is_refused(rig: Rig) -> None:
    token, _ = rig.auth.issue_stream_token("app_1", {}, ADMIN)
    claims, _, mac = token.partition(".")
    tampered = claims[:-2] + ("AA" if claims[-2:] != "AA" else "BB") + "." + mac
    assert await rig.auth.authenticate_stream_token(tampered) is None


async def test_a_stream_token_longer_than_an_hour_is_not_issued(rig: Rig) -> None:
    with pytest.raises(InvalidPayload):
        rig.auth.issue_stream_token("app_1", {"expires_in": 3601}, ADMIN)


# Which app a caller may name


async def test_an_app_key_naming_its_own_app_by_id_costs_no_query(rig: Rig) -> None:
    assert await rig.auth.app_id_for(Principal("app_1", ALL_GRANTS), "app_1") == "app_1"
    assert rig.store.calls == []


async def test_an_app_key_may_name_its_own_app_by_uid(rig: Rig) -> None:
    app = rig.store.add_app(uid="acme")
    assert await rig.auth.app_id_for(Principal(app.id, ALL_GRANTS), "acme") == app.id


async def test_another_apps_id_or_uid_does_not_exist_for_an_app_key(rig: Rig) -> None:
    mine, theirs = rig.store.add_app("mine"), rig.store.add_app("theirs", uid="theirs")
    for ref in (theirs.id, "theirs", "no-such-app"):
        with pytest.raises(NotFound, match="no such app"):
            await rig.auth.app_id_for(Principal(mine.id, ALL_GRANTS), ref)


async def test_the_admin_may_name_any_app_by_id_or_uid_and_no_missing_one(rig: Rig) -> None:
    app = rig.store.add_app(uid="acme")
    assert await rig.auth.app_id_for(ADMIN, "acme") == app.id
    assert await rig.auth.app_id_for(ADMIN, app.id) == app.id
    with pytest.raises(NotFound):
        await rig.auth.app_id_for(ADMIN, "app_" + "0" * 32)


async def test_a_stream_token_for_a_deleted_app_names_nothing(rig: Rig) -> None:
    app = rig.store.add_app()
    token, _ = rig.auth.issue_stream_token(app.id, {}, ADMIN)
    principal = await rig.auth.authenticate_stream_token(token)
    assert principal is not None
    assert await rig.auth.app_id_for(principal, app.id) == app.id
    await rig.store.as_apps.delete(app.id)
    with pytest.raises(NotFound):
        await rig.auth.app_id_for(principal, app.id)
