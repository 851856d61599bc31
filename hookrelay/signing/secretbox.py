"""Endpoint secrets at rest: AES-256-GCM, with a key id stored beside each ciphertext."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12


class SecretBox:
    """Encrypts with the current key; decrypts with it or with any older key still listed."""

    def __init__(self, key: bytes, old_keys: Sequence[bytes] = ()) -> None:
        self._ciphers = {key_id(k): AESGCM(k) for k in (*old_keys, key)}
        self.current_key_id = key_id(key)

    def encrypt(self, plaintext: str, context: str) -> tuple[bytes, str]:
        """Return (nonce + ciphertext, key id); `context` (the owner's id) is authenticated."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[self.current_key_id].encrypt(
            nonce, plaintext.encode(), context.encode()
        )
        return nonce + sealed, self.current_key_id

    def decrypt(self, blob: bytes, blob_key_id: str, context: str) -> str:
        """Return the plaintext of a blob made by `encrypt` for the same `context`."""
        cipher = self._ciphers.get(blob_key_id)
        if cipher is None:
            raise ValueError(f"secret encrypted with unknown key {blob_key_id}")
        try:
            plain = cipher.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], context.encode())
        except InvalidTag as exc:
            raise ValueError("secret ciphertext does not verify") from exc
        return plain.decode()

    def reseal(self, blob: bytes, blob_key_id: str, context: str) -> bytes:
        """Decrypt a blob with whichever key sealed it and encrypt it with the current key."""
        sealed, _ = self.encrypt(self.decrypt(blob, blob_key_id, context), context)
        return sealed


def key_id(key: bytes) -> str:
    """Return a short, non-secret name for a key (its SHA-256, truncated)."""
    return hashlib.sha256(b"hookrelay-key-id:" + key).hexdigest()[:16]
