"""The app keys and portal sessions an API process has looked up lately, so that a request
costs no query.

Entries live KEY_CACHE_TTL_S at most. A revocation (of a key, of an app's portal sessions, or
of an app with all its credentials)
is announced to every API process over Redis and forgets the app's entries at once; the TTL is
what bounds a stale entry when such a notice is lost (Redis away), and after the notices
resume the whole cache is dropped, because one may have been missed meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass

from hookrelay.models import Credential

# An entry is looked up again after this long: the longest a revoked key keeps working on a
# process that missed the revocation notice.
KEY_CACHE_TTL_S = 5.0
KEY_CACHE_SIZE = 10_000


@dataclass(frozen=True)
class CachedKey:
    credential: Credential | None  # None: no such key or session (or revoked)
    until: float  # monotonic seconds


class KeyCache:
    """Key or session hash → what it opens (or None), for a few seconds."""

    def __init__(self, ttl_s: float = KEY_CACHE_TTL_S, size: int = KEY_CACHE_SIZE) -> None:
        self._ttl_s = ttl_s
        self._size = size
        self._entries: dict[bytes, CachedKey] = {}
        # Bumped by every forgetting: an answer looked up before it may be stale, so it is not
        # kept (a lookup that began before a revocation committed could otherwise store the
        # key as valid after the notice had come and gone).
        self.generation = 0

    def get(self, key_hash: bytes, now: float) -> CachedKey | None:
        entry = self._entries.get(key_hash)
        return entry if entry is not None and entry.until > now else None

    def put(
        self, key_hash: bytes, credential: Credential | None, now: float, generation: int
    ) -> None:
        """Remember what a lookup that began at `generation` found, unless something was
        forgotten since it began."""
        if generation != self.generation:
            return
        if len(self._entries) >= self._size:
            self._entries.clear()
        self._entries[key_hash] = CachedKey(credential, now + self._ttl_s)

    def forget_app(self, app_id: str) -> None:
        """A key or the portal sessions of this app were revoked, or the app deleted: look all
        its credentials up again."""
        self.generation += 1
        forgotten = [
            key_hash
            for key_hash, entry in self._entries.items()
            if entry.credential is not None and entry.credential.app_id == app_id
        ]
        for key_hash in forgotten:
            del self._entries[key_hash]

    def clear(self) -> None:
        self.generation += 1
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
