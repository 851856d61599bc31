"""Standard Webhooks signing: known-answer vectors, secrets, headers, the reference verifier."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from hookrelay.signing.webhooks import (
    SigningKey,
    generate_ed25519_secret,
    generate_hmac_secret,
    public_key_of,
    signature_header,
    signed_content,
    webhook_headers,
)

# Published known answers, kept in the repository; where each comes from is in the file.
VECTORS_PATH = Path(__file__).resolve().parents[1] / "vectors" / "standard-webhooks.json"
VECTORS: dict[str, Any] = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))

BODY = b'{"type":"job.completed","data":{"job_id":"job_1"}}'
MSG_ID = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
TIMESTAMP = 1_700_000_000


def sign_vector(vector: dict[str, Any]) -> str:
    key = SigningKey.from_secret(vector["secret"])
    return key.sign(vector["id"], vector["timestamp"], vector["payload"].encode())


def vector_params(kind: str) -> list[Any]:
    return [pytest.param(v, id=f"{kind}-{i}") for i, v in enumerate(VECTORS[kind])]


# Known answers


def test_vector_file_holds_every_kind_of_vector() -> None:
    assert VECTORS["hmac"]
    assert VECTORS["hmac_invalid"]
    assert VECTORS["ed25519"]


@pytest.mark.parametrize("vector", vector_params("hmac"))
def test_hmac_vector_signs_to_its_signature(vector: dict[str, Any]) -> None:
    assert sign_vector(vector) == vector["signature"]


@pytest.mark.parametrize("vector", vector_params("hmac_invalid"))
def test_hmac_invalid_vector_signature_is_not_what_we_produce(vector: dict[str, Any]) -> None:
    assert sign_vector(vector) != vector["signature"]


@pytest.mark.parametrize("vector", vector_params("ed25519"))
def test_ed25519_vector_signs_to_its_signature(vector: dict[str, Any]) -> None:
    assert sign_vector(vector) == vector["signature"]


@pytest.mark.parametrize("vector", vector_params("ed25519"))
def test_ed25519_vector_secret_has_its_public_key(vector: dict[str, Any]) -> None:
    assert public_key_of(vector["secret"]) == vector["public_key"]


# Generated secrets


def test_generated_hmac_secret_is_whsec_and_32_bytes_of_base64() -> None:
    secret = generate_hmac_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32


def test_generated_hmac_secrets_differ_each_call() -> None:
    assert len({generate_hmac_secret() for _ in range(20)}) == 20


def test_generated_hmac_secret_decodes_to_a_v1_key() -> None:
    assert SigningKey.from_secret(generate_hmac_secret()).scheme == "v1"


def test_generated_ed25519_secret_round_trips_to_a_public_key() -> None:
    secret = generate_ed25519_secret()
    raw = base64.b64decode(secret.removeprefix("whsk_"), validate=True)
    public = public_key_of(secret)
    assert secret.startswith("whsk_")
    assert public.startswith("whpk_")
    assert base64.b64decode(public.removeprefix("whpk_")) == raw[32:]


def test_generated_ed25519_signature_verifies_with_its_public_key() -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    secret = generate_ed25519_secret()
    signature = SigningKey.from_secret(secret).sign(MSG_ID, TIMESTAMP, BODY)
    scheme, encoded = signature.split(",")
    public = Ed25519PublicKey.from_public_bytes(
        base64.b64decode(public_key_of(secret).removeprefix("whpk_"))
    )
    assert scheme == "v1a"
    public.verify(base64.b64decode(encoded), signed_content(MSG_ID, TIMESTAMP, BODY))


def test_generated_ed25519_secrets_differ_each_call() -> None:
    assert len({generate_ed25519_secret() for _ in range(10)}) == 10


# Headers


def test_signed_content_is_id_timestamp_and_exact_body() -> None:
    assert signed_content("msg_1", 42, b"{ }") == b"msg_1.42.{ }"


def test_webhook_headers_name_id_timestamp_and_signature() -> None:
    key = SigningKey.from_secret(generate_hmac_secret())
    headers = webhook_headers([key], MSG_ID, TIMESTAMP, BODY)
    assert headers == {
        "webhook-id": MSG_ID,
        "webhook-timestamp": str(TIMESTAMP),
        "webhook-signature": key.sign(MSG_ID, TIMESTAMP, BODY),
    }


def test_webhook_headers_with_two_keys_hold_two_space_separated_signatures() -> None:
    keys = [
        SigningKey.from_secret(generate_hmac_secret()),
        SigningKey.from_secret(generate_ed25519_secret()),
    ]
    signatures = webhook_headers(keys, MSG_ID, TIMESTAMP, BODY)["webhook-signature"].split(" ")
    assert signatures == [key.sign(MSG_ID, TIMESTAMP, BODY) for key in keys]
    assert [s.split(",")[0] for s in signatures] == ["v1", "v1a"]


def test_signature_header_of_no_keys_is_empty() -> None:
    assert signature_header([], MSG_ID, TIMESTAMP, BODY) == ""


def test_reference_library_verifies_our_headers() -> None:
    secret = generate_hmac_secret()
    headers = webhook_headers([SigningKey.from_secret(secret)], MSG_ID, int(time.time()), BODY)
    assert Webhook(secret).verify(BODY, headers) == json.loads(BODY)


def test_reference_library_verifies_our_headers_when_one_of_two_keys_matches() -> None:
    old, new = generate_hmac_secret(), generate_hmac_secret()
    keys = [SigningKey.from_secret(new), SigningKey.from_secret(old)]
    headers = webhook_headers(keys, MSG_ID, int(time.time()), BODY)
    assert Webhook(old).verify(BODY, headers) == json.loads(BODY)


# Tampering and bad secrets


def test_one_byte_change_of_body_changes_signature() -> None:
    key = SigningKey.from_secret(generate_hmac_secret())
    tampered = BODY[:-2] + b"X" + BODY[-1:]
    assert key.sign(MSG_ID, TIMESTAMP, tampered) != key.sign(MSG_ID, TIMESTAMP, BODY)


@pytest.mark.parametrize("field", ["msg_id", "timestamp"])
def test_changing_id_or_timestamp_changes_signature(field: str) -> None:
    key = SigningKey.from_secret(generate_hmac_secret())
    msg_id, timestamp = (MSG_ID + "x", TIMESTAMP) if field == "msg_id" else (MSG_ID, TIMESTAMP + 1)
    assert key.sign(msg_id, timestamp, BODY) != key.sign(MSG_ID, TIMESTAMP, BODY)


@pytest.mark.parametrize(
    "secret",
    ["sk_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "WHSEC_abcd", ""],
)
def test_secret_with_bad_prefix_raises_value_error(secret: str) -> None:
    with pytest.raises(ValueError, match="whsec_ or whsk_"):
        SigningKey.from_secret(secret)


def test_ed25519_secret_of_wrong_length_raises_value_error() -> None:
    with pytest.raises(ValueError, match="64 bytes"):
        SigningKey.from_secret("whsk_" + base64.b64encode(bytes(32)).decode())


def test_hmac_secret_has_no_public_key() -> None:
    with pytest.raises(ValueError, match="only Ed25519"):
        public_key_of(generate_hmac_secret())
