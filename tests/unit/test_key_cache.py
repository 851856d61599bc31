"""The app-key cache of an API process: entries expire, revocations forget an app's keys, and a
lookup that raced a revocation is not kept."""

from __future__ import annotations

from hookrelay.keycache import KeyCache
from hookrelay.models import Credential

KEY_A1, KEY_A2, KEY_B = b"a1", b"a2", b"b"


def opening(app_id: str) -> Credential:
    """A key's credential for `app_id`."""
    return Credential(app_id, ["publish"], None)


def cache_with_keys() -> KeyCache:
    cache = KeyCache(ttl_s=5.0, size=100)
    for key, app_id in ((KEY_A1, "app_a"), (KEY_A2, "app_a"), (KEY_B, "app_b")):
        cache.put(key, opening(app_id), now=0.0, generation=cache.generation)
    return cache


def test_an_entry_is_served_until_its_ttl_and_not_after() -> None:
    cache = cache_with_keys()
    entry = cache.get(KEY_A1, now=4.9)
    assert entry is not None and entry.credential == opening("app_a")
    assert cache.get(KEY_A1, now=5.0) is None


def test_an_unknown_key_is_remembered_as_unknown() -> None:
    cache = KeyCache()
    cache.put(b"nope", None, now=0.0, generation=cache.generation)
    entry = cache.get(b"nope", now=1.0)
    assert entry is not None and entry.credential is None


def test_a_revocation_forgets_every_key_of_its_app_and_only_those() -> None:
    cache = cache_with_keys()
    cache.forget_app("app_a")
    assert cache.get(KEY_A1, now=1.0) is None
    assert cache.get(KEY_A2, now=1.0) is None
    assert cache.get(KEY_B, now=1.0) is not None


def test_a_lookup_that_began_before_a_revocation_is_not_kept() -> None:
    cache = KeyCache()
    began = cache.generation
    cache.forget_app("app_a")  # the notice arrives while the query is on its way
    cache.put(KEY_A1, opening("app_a"), now=0.0, generation=began)
    assert cache.get(KEY_A1, now=0.1) is None
    cache.put(KEY_A1, opening("app_a"), now=0.0, generation=cache.generation)
    assert cache.get(KEY_A1, now=0.1) is not None


def test_clearing_forgets_everything_and_in_flight_lookups() -> None:
    cache = cache_with_keys()
    began = cache.generation
    cache.clear()
    cache.put(KEY_B, opening("app_b"), now=0.0, generation=began)
    assert len(cache) == 0


def test_a_full_cache_starts_afresh_rather_than_grow() -> None:
    cache = KeyCache(size=2)
    for n in range(5):
        cache.put(bytes([n]), opening("app_a"), now=0.0, generation=cache.generation)
        assert len(cache) <= 2
