"""`hookrelay rotate-key`: every endpoint secret re-encrypted with the new key, none lost."""

from __future__ import annotations

import asyncio
import base64
import os
import sys
from dataclasses import replace

from aiohttp.test_utils import TestClient

from hookrelay.settings import Settings
from hookrelay.signing.secretbox import SecretBox, key_id
from hookrelay.storage import Storage
from tests.integration.api_calls import add_endpoint, bearer, create_app_with_key


async def test_rotate_key_reseals_every_secret_with_the_new_key(
    api: TestClient,  # type: ignore[type-arg]
    settings: Settings,
) -> None:
    app = await create_app_with_key(api)
    endpoint = await add_endpoint(api, app, "http://127.0.0.1:9/hook")
    rotated = await api.post(
        f"/v1/apps/{app['id']}/endpoints/{endpoint['id']}/rotate-secret",
        headers=bearer(app["api_key"]),
    )
    new_secret = (await rotated.json())["secret"]
    old_key = settings.require_secret_key()
    new_key = os.urandom(32)
    env = {
        **os.environ,
        "HOOKRELAY_DATABASE_URL": settings.require_database_url(),
        "HOOKRELAY_SECRET_KEY": base64.b64encode(new_key).decode(),
        "HOOKRELAY_OLD_SECRET_KEYS": base64.b64encode(old_key).decode(),
    }
    for expected in ("re-encrypted the secrets of 1 endpoint(s)", "of 0 endpoint(s)"):
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "hookrelay",
            "rotate-key",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
        assert process.returncode == 0, err.decode()
        assert expected in out.decode()

    # Only the new key is needed now, for the current and the rotated-out secret alike.
    storage = await Storage.open(settings.require_database_url())
    try:
        [sealed] = await storage.maintenance.sealed_with_other_keys("none", 10)
    finally:
        await storage.close()
    assert sealed.secret_key_id == sealed.previous_secret_key_id == key_id(new_key)
    only_new = SecretBox(new_key)
    assert only_new.decrypt(sealed.secret_ciphertext, sealed.secret_key_id, sealed.id) == new_secret
    assert sealed.previous_secret_ciphertext is not None
    old_secret = only_new.decrypt(sealed.previous_secret_ciphertext, key_id(new_key), sealed.id)
    assert old_secret == endpoint["secret"]
    assert replace(settings, secret_key=new_key).secret_box().current_key_id == key_id(new_key)
