"""Apps and keys on the in-memory fakes: who may create apps, keys shown once and stored
hashed, revocations that take effect at once and are announced."""

from __future__ import annotations

import pytest

from hookrelay.errors import Forbidden, InvalidPayload, NotFound
from hookrelay.services.access import ALL_GRANTS
from hookrelay.services.auth import ADMIN, APP_KEY_PREFIX, Principal, hash_token
from tests.unit.services.conftest import Rig


async def test_only_the_admin_creates_apps(rig: Rig) -> None:
    with pytest.raises(Forbidden):
        await rig.apps.create_app(Principal("app_1", ALL_GRANTS), {"name": "acme"})
    assert rig.store.calls == []


async def test_a_new_apps_first_key_opens_that_app(rig: Rig) -> None:
    app, key = await rig.apps.create_app(ADMIN, {"name": "acme", "uid": "acme"})
    assert (app.name, app.uid) == ("acme", "acme")
    assert key.startswith(APP_KEY_PREFIX)
    assert await rig.auth.authenticate(key) == Principal(app.id, ALL_GRANTS)


async def test_a_key_is_stored_by_its_hash_and_listed_by_its_prefix(rig: Rig) -> None:
    _, key = await rig.apps.create_app(ADMIN, {"name": "acme"})
    [(stored_hash, stored)] = rig.store.keys.items()
    assert stored_hash == hash_token(key) != key.encode()
    assert stored.prefix == key[:12] and len(key) > 40


async def test_an_invalid_app_is_refused_before_anything_is_written(rig: Rig) -> None:
    with pytest.raises(InvalidPayload):
        await rig.apps.create_app(ADMIN, {"name": ""})
    assert rig.store.calls == []


async def test_a_second_key_opens_the_same_app(rig: Rig) -> None:
    app, _ = await rig.apps.create_app(ADMIN, {"name": "acme"})
    created, key = await rig.apps.create_app_key(ADMIN, app.id, {"name": "ci"})
    assert (created.app_id, created.name) == (app.id, "ci")
    assert await rig.auth.authenticate(key) == Principal(app.id, ALL_GRANTS)


async def test_a_revoked_key_stops_working_at_once_and_is_announced(rig: Rig) -> None:
    app, key = await rig.apps.create_app(ADMIN, {"name": "acme"})
    spare, spare_key = await rig.apps.create_app_key(ADMIN, app.id, {})
    await rig.auth.authenticate(key)  # in the cache now
    first = next(k for k in rig.store.keys.values() if k.id != spare.id)
    revoked = await rig.apps.revoke_app_key(ADMIN, app.id, first.id)
    assert revoked.revoked_at is not None
    assert await rig.auth.authenticate(key) is None
    assert await rig.auth.authenticate(spare_key) == Principal(app.id, ALL_GRANTS)
    assert rig.notices.revoked_apps == [app.id]


async def test_revoking_another_apps_key_is_not_found_and_announces_nothing(rig: Rig) -> None:
    theirs, _ = await rig.apps.create_app(ADMIN, {"name": "theirs"})
    mine, _ = await rig.apps.create_app(ADMIN, {"name": "mine"})
    [their_key] = [k for k in rig.store.keys.values() if k.app_id == theirs.id]
    with pytest.raises(NotFound):
        await rig.apps.revoke_app_key(ADMIN, mine.id, their_key.id)
    assert rig.notices.revoked_apps == []


async def test_a_deleted_apps_keys_stop_working_and_the_deletion_is_announced(rig: Rig) -> None:
    app, key = await rig.apps.create_app(ADMIN, {"name": "acme"})
    await rig.auth.authenticate(key)
    await rig.apps.delete_app(app.id)
    assert await rig.auth.authenticate(key) is None
    assert rig.notices.revoked_apps == [app.id]


async def test_an_app_key_lists_its_own_app_alone(rig: Rig) -> None:
    mine, _ = await rig.apps.create_app(ADMIN, {"name": "mine"})
    await rig.apps.create_app(ADMIN, {"name": "theirs"})
    assert await rig.apps.list_apps(Principal(mine.id, ALL_GRANTS), None, 50) == [mine]
    assert (
        await rig.apps.list_apps(Principal(mine.id, ALL_GRANTS), mine.id, 50) == []
    )  # past the cursor
    assert len(await rig.apps.list_apps(ADMIN, None, 50)) == 2


async def test_a_change_keeps_what_the_body_leaves_out(rig: Rig) -> None:
    app, _ = await rig.apps.create_app(ADMIN, {"name": "acme", "uid": "acme"})
    changed = await rig.apps.update_app(app.id, {"name": "Acme Inc"})
    assert (changed.name, changed.uid) == ("Acme Inc", "acme")
