"""Unpadded URL-safe base64, decoded strictly: one byte string has exactly one spelling."""

from __future__ import annotations

import base64


def encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(text: str) -> bytes:
    """Decode `text`, refusing (ValueError) every spelling but the canonical one: padding, the
    standard alphabet, stray characters and unused low bits set all fail."""
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))  # ValueError if not ASCII
    if encode(raw) != text:
        raise ValueError("not canonical unpadded URL-safe base64")
    return raw
