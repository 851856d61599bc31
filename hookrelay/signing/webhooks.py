"""Standard Webhooks signing: pure functions, no clock, no I/O.

Signed content is `{msg_id}.{timestamp}.{body}` over the exact bytes sent. `v1` is HMAC-SHA256
with a `whsec_` secret; `v1a` is Ed25519 with a `whsk_` secret (seed and public key, base64).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

HMAC_PREFIX = "whsec_"
ED25519_SECRET_PREFIX = "whsk_"
ED25519_PUBLIC_PREFIX = "whpk_"
HMAC_SECRET_BYTES = 32


@dataclass(frozen=True)
class SigningKey:
    """A decoded endpoint secret, ready to sign many messages."""

    scheme: str  # "v1" (HMAC-SHA256) or "v1a" (Ed25519)
    key: bytes  # the HMAC key, or the Ed25519 seed
    # Keyed once, copied for each message: setting up the key is most of a short HMAC's cost.
    _signer: hmac.HMAC | Ed25519PrivateKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        signer = (
            hmac.new(self.key, digestmod=hashlib.sha256)
            if self.scheme == "v1"
            else Ed25519PrivateKey.from_private_bytes(self.key)
        )
        object.__setattr__(self, "_signer", signer)

    @classmethod
    def from_secret(cls, secret: str) -> SigningKey:
        """Decode a `whsec_` or `whsk_` secret strictly: a placeholder such as `whsec_...` must
        not become an empty key. Raises ValueError."""
        if secret.startswith(HMAC_PREFIX):
            raw = _strict_b64decode(secret[len(HMAC_PREFIX) :])
            if not raw:
                raise ValueError("no key follows the whsec_ prefix")
            return cls("v1", raw)
        if secret.startswith(ED25519_SECRET_PREFIX):
            raw = _strict_b64decode(secret[len(ED25519_SECRET_PREFIX) :])
            if len(raw) != 64:
                raise ValueError("a whsk_ secret holds 64 bytes: seed and public key")
            return cls("v1a", raw[:32])
        raise ValueError("a signing secret starts with whsec_ or whsk_")

    def sign(self, msg_id: str, timestamp: int, body: bytes) -> str:
        """Return the `v1,<b64>` or `v1a,<b64>` signature of one message."""
        content = signed_content(msg_id, timestamp, body)
        if isinstance(self._signer, hmac.HMAC):
            mac = self._signer.copy()
            mac.update(content)
            digest = mac.digest()
        else:
            digest = self._signer.sign(content)
        return f"{self.scheme},{base64.b64encode(digest).decode()}"


def signed_content(msg_id: str, timestamp: int, body: bytes) -> bytes:
    """Return the bytes a signature covers."""
    return f"{msg_id}.{timestamp}.".encode() + body


def signature_header(keys: list[SigningKey], msg_id: str, timestamp: int, body: bytes) -> str:
    """Return the `webhook-signature` value: one signature per key, space-separated."""
    return " ".join(key.sign(msg_id, timestamp, body) for key in keys)


def webhook_headers(
    keys: list[SigningKey], msg_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """Return the three Standard Webhooks headers for one attempt."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(keys, msg_id, timestamp, body),
    }


def generate_hmac_secret() -> str:
    """Return a new `whsec_` secret of 32 random bytes."""
    return HMAC_PREFIX + base64.b64encode(os.urandom(HMAC_SECRET_BYTES)).decode()


def generate_ed25519_secret() -> str:
    """Return a new `whsk_` secret (seed and public key)."""
    seed = os.urandom(32)
    public = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()
    return ED25519_SECRET_PREFIX + base64.b64encode(seed + public).decode()


def public_key_of(secret: str) -> str:
    """Return the `whpk_` public key that verifies signatures made with a `whsk_` secret."""
    key = SigningKey.from_secret(secret)
    if key.scheme != "v1a":
        raise ValueError("only Ed25519 secrets have a public key")
    public = Ed25519PrivateKey.from_private_bytes(key.key).public_key().public_bytes_raw()
    return ED25519_PUBLIC_PREFIX + base64.b64encode(public).decode()


def _strict_b64decode(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error as exc:  # a ValueError too, for the callers
        raise ValueError(f"what follows the prefix is not base64 ({exc})") from exc
