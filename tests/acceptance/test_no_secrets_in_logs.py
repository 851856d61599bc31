"""Across a run with key creation, secret rotation, stream tokens, failures and replays, no
secret, token, signature or payload reaches any log line of the API or the worker."""

from __future__ import annotations

import asyncio
import base64
import shutil
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from tests.acceptance.cluster import ADMIN_TOKEN, Client, Cluster
from tests.conftest import server_tempdir
from tests.receiver import Received, Receiver

pytestmark = pytest.mark.acceptance

PAYLOAD_MARKER = "payload-marker-7f3c9e"


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    root = server_tempdir()
    cluster = Cluster(root, log_level="debug", retry_schedule="50ms,50ms")
    await cluster.start()
    yield cluster
    cluster.close()
    shutil.rmtree(root, ignore_errors=True)


async def test_logs_hold_no_secret_token_signature_or_payload(
    cluster: Cluster, receiver: Receiver
) -> None:
    failures = iter([500, 500, 503])

    async def flaky(_: Received) -> web.Response:
        return web.Response(status=next(failures, 200))

    receiver.respond = flaky
    await cluster.start_api()
    cluster.start_worker()
    async with aiohttp.ClientSession() as session:
        client = Client(session, cluster.url)
        await client.create_app()
        endpoint = await client.add_endpoint(f"{receiver.url}/hook")
        status, extra_key = await client.call(
            "POST", f"/v1/apps/{client.app_id}/keys", {"name": "second"}
        )
        assert status == 201
        status, rotated = await client.call(
            "POST", f"/v1/apps/{client.app_id}/endpoints/{endpoint['id']}/rotate-secret"
        )
        assert status == 200
        status, stream_token = await client.call(
            "POST", f"/v1/apps/{client.app_id}/stream-tokens", {"job_id": "j1"}
        )
        assert status == 201
        stream_url = f"{cluster.url}/v1/apps/{client.app_id}/events/stream"
        async with session.get(f"{stream_url}?token={stream_token['token']}") as stream:
            assert stream.status == 200
        async with session.get(f"{stream_url}?token={stream_token['token']}x") as refused:
            assert refused.status == 401
        for n in range(3):
            status, _ = await client.call(
                "POST",
                f"/v1/apps/{client.app_id}/events",
                {"type": "image.ready", "data": {"marker": PAYLOAD_MARKER, "n": n}},
            )
            assert status == 202
        await receiver.wait_for(6, timeout_s=20)
        for _ in range(200):  # the last answers may not be recorded yet
            _, succeeded = await client.call(
                "GET", f"/v1/apps/{client.app_id}/deliveries?status=succeeded"
            )
            if len(succeeded["data"]) == 3:
                break
            await asyncio.sleep(0.05)
        status, _ = await client.call(
            "POST", f"/v1/apps/{client.app_id}/deliveries/replay", {"status": "succeeded"}
        )
        assert status == 202
        await receiver.wait_for(9, timeout_s=20)
        await asyncio.sleep(0.5)

    secrets = {
        "admin token": ADMIN_TOKEN,
        "app key": client.key,
        "second app key": extra_key["key"],
        "secret key": cluster.env()["HOOKRELAY_SECRET_KEY"],
        "old endpoint secret": endpoint["secret"],
        "old endpoint secret, bare": endpoint["secret"].removeprefix("whsec_"),
        "new endpoint secret": rotated["secret"],
        "new endpoint secret, bare": rotated["secret"].removeprefix("whsec_"),
        "payload": PAYLOAD_MARKER,
        "stream token": stream_token["token"],
        "stream token's signature": stream_token["token"].rsplit(".", 1)[1],
    }
    for n, received in enumerate(receiver.requests):
        for m, signature in enumerate(received.headers["webhook-signature"].split()):
            secrets[f"signature {n}.{m}"] = signature.split(",", 1)[1]
    logs = cluster.logs(whole=True)
    assert "delivery attempted" in logs  # the logs are there, and at debug level
    assert base64.b64decode(cluster.env()["HOOKRELAY_SECRET_KEY"])  # a real key was in use
    leaked = [name for name, value in secrets.items() if value in logs]
    assert leaked == []
