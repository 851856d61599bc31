"""Across a run with key creation, secret rotation, stream tokens, failures and replays, no
secret, token, signature or payload reaches any log line of the API or the worker. Nor does a
credential carried by a request the server cannot parse, in its logs or in its answer."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import shutil
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from hookrelay.api.server import MALFORMED_REQUEST
from tests.acceptance.harness import ADMIN_TOKEN, AcceptanceCluster, Client
from tests.conftest import server_tempdir
from tests.receiver import Received, Receiver

pytestmark = pytest.mark.acceptance

PAYLOAD_MARKER = "payload-marker-7f3c9e"


@pytest.fixture
async def cluster() -> AsyncIterator[AcceptanceCluster]:
    root = server_tempdir()
    # A body that never ends is answered (408) once the read timeout is over, within the wait.
    cluster = AcceptanceCluster(
        root, log_level="debug", retry_schedule="50ms,50ms", request_read_timeout="2s"
    )
    await cluster.start()
    yield cluster
    cluster.close()
    shutil.rmtree(root, ignore_errors=True)


async def test_logs_hold_no_secret_token_signature_or_payload(
    cluster: AcceptanceCluster, receiver: Receiver
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


# A separator of parts sent apart: the server has read the first before the next arrives.
PAUSE_S = 0.1
ANSWER_TIMEOUT_S = 5.0
LOGS_TIMEOUT_S = 10.0


def malformed_requests(app_id: str, credential: str) -> dict[str, list[str]]:
    """Requests carrying `credential` in every place a request can carry one, each refused
    by the parser or by the API; each is a list of parts sent one after the other."""
    c = credential
    head = "Host: localhost\r\nConnection: close\r\n"
    stream = f"/v1/apps/{app_id}/events/stream"
    post = (
        f"POST /v1/apps/{app_id}/events HTTP/1.1\r\n{head}"
        f"Authorization: Bearer {c}\r\nContent-Type: application/json\r\n"
    )
    chunked = f"{post}Transfer-Encoding: chunked\r\n\r\n"
    return {
        "method": [f"{c}\x01 / HTTP/1.1\r\n{head}\r\n"],
        "method, only token characters": [f"{c} / HTTP/1.1\r\n{head}\r\n"],
        "path with a space": [f"GET /v1/{c} x HTTP/1.1\r\n{head}\r\n"],
        "path with a control character": [f"GET /v1/{c}\x01 HTTP/1.1\r\n{head}\r\n"],
        "query with a control character": [f"GET {stream}?token={c}\x01 HTTP/1.1\r\n{head}\r\n"],
        "query with a bad version": [f"GET {stream}?token={c} HTTP/9.z\r\n{head}\r\n"],
        "version": [f"GET / HTTP/1.1{c}\r\n{head}\r\n"],
        "over-long request line": [f"GET /?token={c}{'a' * 9000} HTTP/1.1\r\n{head}\r\n"],
        "authorization with a control character": [
            f"GET /v1/apps HTTP/1.1\r\n{head}Authorization: Bearer {c}\x01\r\n\r\n"
        ],
        "authorization with a bare CR": [
            f"GET /v1/apps HTTP/1.1\r\n{head}Authorization: Bearer {c}\rX\r\n\r\n"
        ],
        "authorization with a NUL, no scheme": [
            f"GET /v1/apps HTTP/1.1\r\n{head}Authorization: {c}\x00\r\n\r\n"
        ],
        "over-long authorization": [
            f"GET /v1/apps HTTP/1.1\r\n{head}Authorization: Bearer {c}{'a' * 9000}\r\n\r\n"
        ],
        "another header": [f"GET /v1/apps HTTP/1.1\r\n{head}X-Forwarded-For: {c}\x01\r\n\r\n"],
        "folded header": [f"GET /v1/apps HTTP/1.1\r\n{head}X-Note: a\r\n {c}\r\n\r\n"],
        "header name with a control character": [
            f"GET /v1/apps HTTP/1.1\r\n{head}{c}\x01: y\r\n\r\n"
        ],
        "header name without a value": [f"GET /v1/apps HTTP/1.1\r\n{head}{c}\r\n\r\n"],
        "header name before a space": [f"GET /v1/apps HTTP/1.1\r\n{head}{c} : y\r\n\r\n"],
        "content-length": [f"{post}Content-Length: {c}\r\n\r\n"],
        "content-length and chunked": [
            f"{post}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n{c}"
        ],
        "chunk size": [f"{chunked}{c}\r\n"],
        "chunk size, after the headers": [chunked, f"{c}\r\n"],
        "chunk extension": [f"{chunked}2;x={c}\x01\r\n{{}}\r\n0\r\n\r\n"],
        "chunk overrunning its size": [f"{chunked}2\r\n{{}}{c}\r\n0\r\n\r\n"],
        "trailer": [f"{chunked}2\r\n{{}}\r\n0\r\n{c}\x01: y\r\n\r\n"],
        "body": [f"{post}Content-Length: {len(c)}\r\n\r\n{c}"],
        "body shorter than its length": [f"{post}Content-Length: {len(c) + 10}\r\n\r\n{c}"],
    }


async def exchange(port: int, parts: list[str], wait_s: float) -> bytes:
    """Send `parts` over one connection; return what the server answered within `wait_s`."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    answer = b""
    try:
        async with asyncio.timeout(wait_s):
            for n, part in enumerate(parts):
                if n:
                    await asyncio.sleep(PAUSE_S)
                writer.write(part.encode())
                await writer.drain()
            while not complete(answer) and (chunk := await reader.read(65536)):
                answer += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    finally:
        writer.close()
    return answer


def complete(answer: bytes) -> bool:
    """Whether `answer` holds a whole response (the server may linger over a short body)."""
    head, blank, body = answer.partition(b"\r\n\r\n")
    length = re.search(rb"(?im)^content-length: *([0-9]+)", head)
    return bool(blank) and length is not None and len(body) >= int(length[1])


def refusal(answer: bytes) -> tuple[int, dict[str, object]]:
    """The status and the JSON error of an HTTP answer."""
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    error = json.loads(body)["error"]
    assert set(error) == {"code", "message", "details"}
    return status, error


async def test_malformed_requests_leave_no_credential_in_logs_or_answers(
    cluster: AcceptanceCluster,
) -> None:
    await cluster.start_api()
    cluster.start_worker()
    async with aiohttp.ClientSession() as session:
        client = Client(session, cluster.url)
        await client.create_app()
        status, stream_token = await client.call(
            "POST", f"/v1/apps/{client.app_id}/stream-tokens", {"job_id": "j1"}
        )
        assert status == 201
    credentials = {
        "app key": client.key,
        "admin token": ADMIN_TOKEN,
        "stream token": stream_token["token"],
    }
    answers = {
        (who, where): await exchange(cluster.api_port, parts, ANSWER_TIMEOUT_S)
        for who, credential in credentials.items()
        for where, parts in malformed_requests(client.app_id, credential).items()
    }
    refusals = {key: refusal(answer) for key, answer in answers.items() if answer}
    # One line for each request the parser refused (some at debug level), naming no request.
    parser_refusals = [
        error for _, error in refusals.values() if error["message"] == MALFORMED_REQUEST
    ]
    # Read the logs once every refusal is in them: a search of logs not yet written finds
    # nothing, and would pass.
    deadline = time.monotonic() + LOGS_TIMEOUT_S
    logs = cluster.logs(whole=True)
    while logs.count('"malformed request refused"') < len(parser_refusals):
        assert time.monotonic() < deadline, "the refusals never all reached the logs"
        await asyncio.sleep(0.1)
        logs = cluster.logs(whole=True)
    assert "app created" in logs  # the logs are there
    secrets = {**credentials, "stream token's signature": stream_token["token"].rsplit(".", 1)[1]}
    leaked = [(name, "logs") for name, value in secrets.items() if value in logs]
    leaked += [
        (name, where)
        for name, value in secrets.items()
        for (_, where), answer in answers.items()
        if value.encode() in answer
    ]
    assert leaked == []
    assert {where for (_, where), answer in answers.items() if not answer} == set()
    assert all(400 <= status < 500 for status, _ in refusals.values())
    assert refusals["app key", "authorization with a bare CR"] == (
        400,
        {"code": "bad_request", "message": MALFORMED_REQUEST, "details": None},
    )
    assert len(parser_refusals) > len(answers) / 2
    assert logs.count('"malformed request refused"') == len(parser_refusals)
