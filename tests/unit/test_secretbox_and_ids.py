"""Endpoint secrets at rest (AES-GCM with key rotation) and prefixed, time-sortable ids."""

from __future__ import annotations

import base64
import random

import pytest

from hookrelay.ids import PREFIXES, is_id, new_id
from hookrelay.signing.secretbox import NONCE_BYTES, SecretBox, key_id

OLD_KEY = bytes(range(32))
NEW_KEY = bytes(range(32, 64))
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
CONTEXT = "ep_0190a1b2c3d4e5f60718293a4b5c6d7e"


# SecretBox


def test_encrypt_then_decrypt_returns_the_plaintext() -> None:
    box = SecretBox(NEW_KEY)
    blob, blob_key_id = box.encrypt(SECRET, CONTEXT)
    assert box.decrypt(blob, blob_key_id, CONTEXT) == SECRET


def test_encrypt_round_trips_unicode_and_empty_text() -> None:
    box = SecretBox(NEW_KEY)
    for text in ("", "clé secrète ✓"):
        blob, blob_key_id = box.encrypt(text, CONTEXT)
        assert box.decrypt(blob, blob_key_id, CONTEXT) == text


def test_ciphertext_does_not_hold_the_plaintext() -> None:
    blob, _ = SecretBox(NEW_KEY).encrypt(SECRET, CONTEXT)
    assert SECRET.encode() not in blob


def test_encrypting_twice_gives_different_blobs() -> None:
    box = SecretBox(NEW_KEY)
    assert box.encrypt(SECRET, CONTEXT)[0] != box.encrypt(SECRET, CONTEXT)[0]


def test_blob_starts_with_a_nonce_and_carries_a_tag() -> None:
    blob, _ = SecretBox(NEW_KEY).encrypt(SECRET, CONTEXT)
    assert len(blob) == NONCE_BYTES + len(SECRET.encode()) + 16


def test_encrypt_names_the_current_key() -> None:
    box = SecretBox(NEW_KEY, old_keys=[OLD_KEY])
    assert box.encrypt(SECRET, CONTEXT)[1] == box.current_key_id == key_id(NEW_KEY)


def test_wrong_context_fails_to_decrypt() -> None:
    box = SecretBox(NEW_KEY)
    blob, blob_key_id = box.encrypt(SECRET, CONTEXT)
    with pytest.raises(ValueError, match="does not verify"):
        box.decrypt(blob, blob_key_id, "ep_someone_else")


@pytest.mark.parametrize("index", [0, NONCE_BYTES - 1, NONCE_BYTES, -1])
def test_tampered_byte_fails_to_decrypt(index: int) -> None:
    box = SecretBox(NEW_KEY)
    blob, blob_key_id = box.encrypt(SECRET, CONTEXT)
    tampered = bytearray(blob)
    tampered[index] ^= 0x01
    with pytest.raises(ValueError, match="does not verify"):
        box.decrypt(bytes(tampered), blob_key_id, CONTEXT)


def test_truncated_blob_fails_to_decrypt() -> None:
    box = SecretBox(NEW_KEY)
    blob, blob_key_id = box.encrypt(SECRET, CONTEXT)
    with pytest.raises(ValueError, match="does not verify"):
        box.decrypt(blob[:-1], blob_key_id, CONTEXT)


def test_old_key_still_decrypts_after_rotation() -> None:
    blob, blob_key_id = SecretBox(OLD_KEY).encrypt(SECRET, CONTEXT)
    rotated = SecretBox(NEW_KEY, old_keys=[OLD_KEY])
    assert rotated.decrypt(blob, blob_key_id, CONTEXT) == SECRET


def test_old_secret_cannot_decrypt_after_key_removed() -> None:
    blob, blob_key_id = SecretBox(OLD_KEY).encrypt(SECRET, CONTEXT)
    with pytest.raises(ValueError, match="unknown key"):
        SecretBox(NEW_KEY).decrypt(blob, blob_key_id, CONTEXT)


def test_blob_under_a_key_id_it_was_not_made_with_fails() -> None:
    blob, _ = SecretBox(OLD_KEY).encrypt(SECRET, CONTEXT)
    rotated = SecretBox(NEW_KEY, old_keys=[OLD_KEY])
    with pytest.raises(ValueError, match="does not verify"):
        rotated.decrypt(blob, key_id(NEW_KEY), CONTEXT)


def test_key_ids_differ_per_key() -> None:
    keys = [OLD_KEY, NEW_KEY, bytes(32), bytes([1]) + bytes(31)]
    assert len({key_id(key) for key in keys}) == len(keys)


def test_key_id_is_stable_for_a_key() -> None:
    assert key_id(NEW_KEY) == key_id(bytes(NEW_KEY))


def test_key_id_is_sixteen_hex_digits() -> None:
    assert len(key_id(NEW_KEY)) == 16
    int(key_id(NEW_KEY), 16)


@pytest.mark.parametrize("key", [OLD_KEY, NEW_KEY])
def test_key_id_does_not_reveal_the_key(key: bytes) -> None:
    identifier = key_id(key)
    for encoding in (key.hex(), base64.b64encode(key).decode(), key.hex()[:16]):
        assert encoding not in identifier
        assert identifier not in encoding


# Ids


@pytest.mark.parametrize("prefix", PREFIXES)
def test_new_id_has_the_prefix_and_32_hex_digits(prefix: str) -> None:
    identifier = new_id(prefix)
    rest = identifier.removeprefix(prefix)
    assert identifier.startswith(prefix)
    assert len(rest) == 32
    assert all(ch in "0123456789abcdef" for ch in rest)


def test_new_id_starts_with_the_time_in_milliseconds() -> None:
    assert new_id("evt_", now_ms=0x0190A1B2C3D4).startswith("evt_0190a1b2c3d4")


def test_new_ids_sort_by_time() -> None:
    times = [1_700_000_000_000 + step * 997 for step in range(200)]
    shuffled = random.Random(5).sample(times, len(times))
    ids = {new_id("evt_", now_ms=ms): ms for ms in shuffled}
    assert [ids[i] for i in sorted(ids)] == times


def test_new_ids_in_the_same_millisecond_differ() -> None:
    assert len({new_id("dlv_", now_ms=1) for _ in range(100)}) == 100


@pytest.mark.parametrize("prefix", ["", "evt", "foo_", "EVT_", "evt__", "user_"])
def test_new_id_with_unknown_prefix_raises(prefix: str) -> None:
    with pytest.raises(ValueError, match="unknown id prefix"):
        new_id(prefix)


@pytest.mark.parametrize("prefix", PREFIXES)
def test_is_id_accepts_a_new_id_with_its_prefix(prefix: str) -> None:
    assert is_id(new_id(prefix), prefix)


@pytest.mark.parametrize(
    ("text", "prefix"),
    [
        ("evt_000000000001" + "0123456789abcdef0123", "dlv_"),  # an event id, not a delivery's
        ("evt_" + "0" * 31, "evt_"),
        ("evt_" + "0" * 33, "evt_"),
        ("evt_" + "A" * 32, "evt_"),
        ("evt_" + "g" * 32, "evt_"),
        ("evt-" + "0" * 32, "evt_"),
        (" evt_" + "0" * 32, "evt_"),
        ("", "evt_"),
        ("my-app", "app_"),
    ],
)
def test_is_id_refuses_what_is_not_an_id_with_prefix(text: str, prefix: str) -> None:
    assert not is_id(text, prefix)


def test_is_id_refuses_a_trailing_newline() -> None:
    assert not is_id(new_id("evt_", now_ms=1) + "\n", "evt_")
