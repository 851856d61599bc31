"""Endpoints: register one (its URL checked against the SSRF rules, its secret made and
encrypted), change one (a resumed endpoint releases the deliveries held meanwhile), give one a
new secret, read its secret, delete one."""

from __future__ import annotations

import socket
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import structlog

from hookrelay.errors import UnsafeTarget
from hookrelay.ids import new_id
from hookrelay.models import Endpoint
from hookrelay.schemas import validate_request
from hookrelay.services.enqueue import Enqueuer
from hookrelay.services.ports import EndpointStore, Resolver
from hookrelay.settings import Settings
from hookrelay.signing import webhooks
from hookrelay.signing.secretbox import SecretBox
from hookrelay.ssrf.headers import check_custom_headers
from hookrelay.ssrf.rules import (
    IPNetwork,
    check_addresses,
    literal_host_problem,
    parse_callback_url,
)
from hookrelay.statuses import EndpointStatus, SigningScheme

log = structlog.get_logger(__name__)


class Endpoints:
    """The operations on an app's endpoints that check, encrypt or release something."""

    def __init__(
        self,
        settings: Settings,
        endpoints: EndpointStore,
        box: SecretBox,
        resolver: Resolver,
        enqueuer: Enqueuer,
    ) -> None:
        self._settings = settings
        self._endpoints = endpoints
        self._box = box
        # Names of callback hosts are resolved with this (tests give one they control).
        self._resolver = resolver
        self._enqueuer = enqueuer

    async def create_endpoint(self, app_id: str, body: Any) -> tuple[Endpoint, str]:
        """Register an endpoint; return it and its signing secret."""
        body = validate_request("endpoint_create", body)
        check_custom_headers(body.get("headers"))
        await check_callback_url(body["url"], self._settings.allowed_cidrs, self._resolver)
        scheme = body.get("signing", SigningScheme.HMAC)
        secret = new_secret(scheme)
        endpoint_id = new_id("ep_")
        ciphertext, key_id = self._box.encrypt(secret, endpoint_id)
        now = datetime.now(UTC)
        endpoint = await self._endpoints.create(
            Endpoint(
                id=endpoint_id,
                app_id=app_id,
                url=body["url"],
                description=body.get("description", ""),
                event_types=body.get("event_types"),
                status=EndpointStatus.ACTIVE,
                disabled_reason=None,
                signing=scheme,
                secret_ciphertext=ciphertext,
                secret_key_id=key_id,
                headers=body.get("headers") or {},
                rate_limit_per_s=body.get("rate_limit_per_s"),
                created_at=now,
                updated_at=now,
                public_key=public_key_of(secret),
            )
        )
        log.info("endpoint created", app_id=app_id, endpoint_id=endpoint.id)
        return endpoint, secret

    def secret_of(self, endpoint: Endpoint) -> str:
        """Return an endpoint's signing secret, decrypted."""
        return self._box.decrypt(endpoint.secret_ciphertext, endpoint.secret_key_id, endpoint.id)

    async def update_endpoint(self, app_id: str, endpoint_id: str, body: Any) -> Endpoint:
        """Change an endpoint; resuming it releases the deliveries held while it was not active."""
        body = validate_request("endpoint_update", body)
        check_custom_headers(body.get("headers"))
        if "url" in body:
            await check_callback_url(body["url"], self._settings.allowed_cidrs, self._resolver)

        def change(endpoint: Endpoint) -> Endpoint:
            status = body.get("status", endpoint.status)
            return replace(
                endpoint,
                url=body.get("url", endpoint.url),
                description=body.get("description", endpoint.description),
                event_types=body.get("event_types", endpoint.event_types),
                headers=(body["headers"] or {}) if "headers" in body else endpoint.headers,
                rate_limit_per_s=body.get("rate_limit_per_s", endpoint.rate_limit_per_s),
                status=status,
                disabled_reason=(
                    None if status != EndpointStatus.DISABLED else endpoint.disabled_reason
                ),
            )

        endpoint, released = await self._endpoints.update(app_id, endpoint_id, change)
        if released:
            log.info("held deliveries released", endpoint_id=endpoint_id, count=len(released))
            await self._enqueuer.enqueue_due(released)
        return endpoint

    async def rotate_secret(self, app_id: str, endpoint_id: str) -> tuple[Endpoint, str]:
        """Give an endpoint a new secret; the old one keeps signing beside it for the grace
        period, so receivers can switch without missing a delivery."""
        endpoint = await self._endpoints.get(app_id, endpoint_id)
        secret = new_secret(endpoint.signing)
        ciphertext, key_id = self._box.encrypt(secret, endpoint.id)
        rotated = await self._endpoints.rotate_secret(
            app_id,
            endpoint.id,
            ciphertext,
            key_id,
            public_key_of(secret),
            self._settings.secret_rotation_grace_s,
        )
        log.info("endpoint secret rotated", app_id=app_id, endpoint_id=endpoint.id)
        return rotated, secret

    async def delete_endpoint(self, app_id: str, endpoint_id: str) -> None:
        """Delete an endpoint with its deliveries."""
        await self._endpoints.delete(app_id, endpoint_id)
        log.info("endpoint deleted", app_id=app_id, endpoint_id=endpoint_id)


async def check_callback_url(url: str, allowed: Iterable[IPNetwork], resolver: Resolver) -> None:
    """Check a callback URL at registration: its form, then its address if it is one, else
    every address it resolves to (IPv4 and IPv6)."""
    target = parse_callback_url(url)
    allowed = tuple(allowed)
    problem = literal_host_problem(target.host, allowed)
    if problem is not None:
        raise UnsafeTarget(problem)
    try:
        results = await resolver.resolve(target.host, target.port, socket.AF_UNSPEC)
    except (OSError, UnicodeError) as exc:
        raise UnsafeTarget(f"the host {target.host} does not resolve") from exc
    check_addresses(target.host, (r["host"] for r in results), allowed)


def new_secret(scheme: str) -> str:
    """A new signing secret of the scheme: whsec_ (HMAC) or whsk_ (Ed25519)."""
    if scheme == SigningScheme.ED25519:
        return webhooks.generate_ed25519_secret()
    return webhooks.generate_hmac_secret()


def public_key_of(secret: str) -> str | None:
    """The whpk_ key of an Ed25519 secret; None for an HMAC secret."""
    if secret.startswith(webhooks.ED25519_SECRET_PREFIX):
        return webhooks.public_key_of(secret)
    return None
