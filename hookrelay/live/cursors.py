"""Long-poll cursors: where a reader of an app's log left off, sealed.

A position in the log is (the writing transaction's id, the event id). Transaction ids are one
counter for the whole Postgres server, so in clear they would tell every tenant how busy the
server is. A cursor is therefore the position encrypted with AES-SIV under a key derived from
HOOKRELAY_SECRET_KEY, with the app's id as associated data: a client can neither read it, nor
change it, nor use it on another app. AES-SIV needs no nonce (nothing can run out or repeat
badly); being deterministic, it only shows that two cursors of one app are the same position.
The reader decrypts it back to the same position, so ordering is exactly that of the log.
"""

from __future__ import annotations

import binascii
import functools
import hashlib
import hmac
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESSIV

from hookrelay import base64url
from hookrelay.ids import ID_BYTES
from hookrelay.models import LogPosition

EVENT_ID_PREFIX = "evt_"  # one of ids.PREFIXES
_KEY_LABEL = b"hookrelay log cursor v1"
_TRANSACTION = struct.Struct(">Q")  # xid8: 64 bits


@functools.cache
def _cipher(secret_key: bytes) -> AESSIV:
    # A key of its own (64 bytes: AES-256-SIV): the key sealing secrets at rest seals nothing
    # else.
    return AESSIV(hmac.new(secret_key, _KEY_LABEL, hashlib.sha512).digest())


def seal_position(secret_key: bytes, app_id: str, position: LogPosition) -> str:
    """The cursor a long-poll answers with, for `app_id` only."""
    transaction, event_id = position
    plain = _TRANSACTION.pack(transaction)
    if event_id:
        plain += bytes.fromhex(event_id.removeprefix(EVENT_ID_PREFIX))
    return base64url.encode(_cipher(secret_key).encrypt(plain, [app_id.encode()]))


def open_position(secret_keys: tuple[bytes, ...], app_id: str, cursor: str) -> LogPosition | None:
    """The position a cursor sealed for `app_id` with one of `secret_keys` holds, or None."""
    try:
        sealed = base64url.decode(cursor)
    except (binascii.Error, ValueError):
        return None
    for key in secret_keys:
        try:
            plain = _cipher(key).decrypt(sealed, [app_id.encode()])
        except (InvalidTag, ValueError):  # ValueError: too short to hold a tag
            continue
        if len(plain) not in (_TRANSACTION.size, _TRANSACTION.size + ID_BYTES):
            return None
        [transaction] = _TRANSACTION.unpack_from(plain)
        event_bytes = plain[_TRANSACTION.size :]
        return transaction, EVENT_ID_PREFIX + event_bytes.hex() if event_bytes else ""
    return None
