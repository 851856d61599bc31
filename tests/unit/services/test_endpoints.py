"""Endpoints on the in-memory fakes: the SSRF check at registration (with a scripted
resolver), secrets encrypted at rest, held deliveries released on resume."""

from __future__ import annotations

import ipaddress
from dataclasses import replace

import pytest
import structlog

from hookrelay.errors import InvalidPayload, NotFound, UnsafeTarget
from hookrelay.models import Endpoint
from hookrelay.services.endpoints import check_callback_url
from hookrelay.statuses import DeliveryStatus, EndpointStatus
from tests.fakes import ScriptedResolver
from tests.unit.services.conftest import PUBLIC_ADDRESS, PUBLIC_HOST, Rig, build_rig

URL = f"https://{PUBLIC_HOST}/in"


async def register(rig: Rig, **body: object) -> tuple[Endpoint, str]:
    app = rig.store.add_app()
    return await rig.endpoints.create_endpoint(app.id, {"url": URL, **body})


def held_deliveries(rig: Rig, endpoint: Endpoint, count: int) -> list[str]:
    return [
        rig.store.add_delivery(
            rig.store.add_event(endpoint.app_id), endpoint, status=DeliveryStatus.HELD
        ).id
        for _ in range(count)
    ]


# The SSRF check


async def test_a_url_whose_host_resolves_to_public_addresses_is_registered(rig: Rig) -> None:
    endpoint, _ = await register(rig)
    assert (endpoint.url, endpoint.status) == (URL, EndpointStatus.ACTIVE)
    assert rig.resolver.asked == [PUBLIC_HOST]


@pytest.mark.parametrize(
    "url", ["http://10.0.0.1/hook", "http://127.0.0.1:8080/", "http://[::1]/", "http://0x7f000001/"]
)
async def test_a_private_address_literal_is_refused_without_resolving(rig: Rig, url: str) -> None:
    with pytest.raises(UnsafeTarget):
        await rig.endpoints.create_endpoint(rig.store.add_app().id, {"url": url})
    assert rig.resolver.asked == []
    assert rig.store.endpoints == {}


async def test_a_name_resolving_to_a_private_address_is_refused_without_naming_it(
    rig: Rig,
) -> None:
    rig.resolver.answers["internal.example"] = [PUBLIC_ADDRESS, "10.1.2.3"]
    with pytest.raises(UnsafeTarget) as refused:
        await rig.endpoints.create_endpoint(
            rig.store.add_app().id, {"url": "https://internal.example/"}
        )
    assert refused.value.message == "the host internal.example resolves to a non-public address"
    assert rig.store.endpoints == {}


async def test_a_name_that_does_not_resolve_is_refused(rig: Rig) -> None:
    with pytest.raises(UnsafeTarget, match="does not resolve"):
        await rig.endpoints.create_endpoint(
            rig.store.add_app().id, {"url": "https://nowhere.example/"}
        )


async def test_an_allowed_network_may_be_reached(rig: Rig) -> None:
    settings = rig.settings.with_allowed(ipaddress.ip_network("127.0.0.0/8"))
    endpoint, _ = await register(build_rig(settings), url="http://127.0.0.1:9000/hook")
    assert endpoint.url == "http://127.0.0.1:9000/hook"


@pytest.mark.parametrize("url", ["http://[::ffff:127.1]/", "http://[::ffff:0177.0.0.1]:9/"])
async def test_a_malformed_ipv6_literal_is_refused_at_registration_unresolved(url: str) -> None:
    resolver = ScriptedResolver()
    with pytest.raises(UnsafeTarget):
        await check_callback_url(url, (), resolver)
    assert resolver.asked == []


async def test_a_new_url_is_checked_again_on_change(rig: Rig) -> None:
    endpoint, _ = await register(rig)
    with pytest.raises(UnsafeTarget):
        await rig.endpoints.update_endpoint(
            endpoint.app_id, endpoint.id, {"url": "http://169.254.169.254/latest"}
        )
    assert rig.store.endpoints[endpoint.id].url == URL


async def test_a_change_without_a_url_resolves_nothing(rig: Rig) -> None:
    endpoint, _ = await register(rig)
    await rig.endpoints.update_endpoint(endpoint.app_id, endpoint.id, {"description": "x"})
    assert rig.resolver.asked == [PUBLIC_HOST]  # registration's lookup only


async def test_a_reserved_custom_header_is_refused(rig: Rig) -> None:
    with pytest.raises(InvalidPayload):
        await register(rig, headers={"Content-Type": "text/plain"})
    assert rig.store.endpoints == {}


# Secrets


async def test_an_hmac_secret_is_stored_encrypted_and_decrypts_to_what_was_shown(
    rig: Rig,
) -> None:
    endpoint, secret = await register(rig)
    assert secret.startswith("whsec_")
    stored = rig.store.endpoints[endpoint.id]
    assert secret.encode() not in stored.secret_ciphertext
    assert rig.endpoints.secret_of(stored) == secret
    assert stored.public_key is None


async def test_an_ed25519_endpoint_gets_a_signing_key_and_its_public_key(rig: Rig) -> None:
    endpoint, secret = await register(rig, signing="ed25519")
    assert secret.startswith("whsk_")
    assert endpoint.public_key is not None and endpoint.public_key.startswith("whpk_")
    assert rig.endpoints.secret_of(endpoint) == secret


async def test_a_secret_is_bound_to_its_endpoint(rig: Rig) -> None:
    first, _ = await register(rig)
    second, _ = await register(rig)
    swapped = replace(second, secret_ciphertext=first.secret_ciphertext)
    with pytest.raises(Exception):  # noqa: B017 - whatever the cipher raises: not a secret
        rig.endpoints.secret_of(swapped)


async def test_a_rotated_secret_is_new_and_decrypts(rig: Rig) -> None:
    endpoint, old = await register(rig)
    rotated, new = await rig.endpoints.rotate_secret(endpoint.app_id, endpoint.id)
    assert new != old and new.startswith("whsec_")
    assert rig.endpoints.secret_of(rotated) == new


async def test_rotating_another_apps_endpoint_is_not_found(rig: Rig) -> None:
    endpoint, _ = await register(rig)
    with pytest.raises(NotFound):
        await rig.endpoints.rotate_secret(rig.store.add_app("other").id, endpoint.id)


# Pausing and resuming


async def test_resuming_an_endpoint_releases_its_held_deliveries_to_the_queue(rig: Rig) -> None:
    endpoint, _ = await register(rig)
    await rig.endpoints.update_endpoint(endpoint.app_id, endpoint.id, {"status": "paused"})
    held = held_deliveries(rig, endpoint, 3)
    resumed = await rig.endpoints.update_endpoint(
        endpoint.app_id, endpoint.id, {"status": "active"}
    )
    assert resumed.status == EndpointStatus.ACTIVE
    assert sorted(rig.queue.enqueued) == sorted((d, 0) for d in held)
    assert rig.new_deliveries.enqueued == []


async def test_pausing_releases_nothing(rig: Rig) -> None:
    endpoint, _ = await register(rig)
    held_deliveries(rig, endpoint, 2)
    await rig.endpoints.update_endpoint(endpoint.app_id, endpoint.id, {"status": "paused"})
    assert rig.queue.enqueued == []


async def test_re_enabling_a_disabled_endpoint_clears_its_reason_and_releases(rig: Rig) -> None:
    endpoint, _ = await register(rig)
    rig.store.endpoints[endpoint.id] = replace(
        endpoint, status=EndpointStatus.DISABLED, disabled_reason="410 Gone"
    )
    held = held_deliveries(rig, endpoint, 1)
    resumed = await rig.endpoints.update_endpoint(
        endpoint.app_id, endpoint.id, {"status": "active"}
    )
    assert resumed.disabled_reason is None
    assert rig.queue.enqueued == [(held[0], 0)]


async def test_a_release_that_cannot_be_enqueued_is_logged_and_the_change_kept(rig: Rig) -> None:
    endpoint, _ = await register(rig)
    await rig.endpoints.update_endpoint(endpoint.app_id, endpoint.id, {"status": "paused"})
    held_deliveries(rig, endpoint, 1)
    rig.queue.failure = ConnectionError("redis is away")
    with structlog.testing.capture_logs() as logs:
        resumed = await rig.endpoints.update_endpoint(
            endpoint.app_id, endpoint.id, {"status": "active"}
        )
    assert resumed.status == EndpointStatus.ACTIVE
    assert any(e["event"].startswith("enqueue failed") for e in logs)


async def test_a_change_keeps_what_the_body_leaves_out(rig: Rig) -> None:
    endpoint, _ = await register(rig, event_types=["job.completed"], headers={"X-Team": "a"})
    changed = await rig.endpoints.update_endpoint(
        endpoint.app_id, endpoint.id, {"description": "prod"}
    )
    assert (changed.description, changed.event_types, changed.headers) == (
        "prod",
        ["job.completed"],
        {"X-Team": "a"},
    )


async def test_headers_set_to_none_are_removed(rig: Rig) -> None:
    endpoint, _ = await register(rig, headers={"X-Team": "a"})
    changed = await rig.endpoints.update_endpoint(endpoint.app_id, endpoint.id, {"headers": {}})
    assert changed.headers == {}


async def test_a_deleted_endpoint_is_gone_and_another_apps_is_not_found(rig: Rig) -> None:
    endpoint, _ = await register(rig)
    with pytest.raises(NotFound):
        await rig.endpoints.delete_endpoint(rig.store.add_app("other").id, endpoint.id)
    await rig.endpoints.delete_endpoint(endpoint.app_id, endpoint.id)
    assert rig.store.endpoints == {}
