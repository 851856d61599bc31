"""A small Server-Sent Events reader for tests: frames as the text/event-stream format defines
them, comments included (heartbeats are comments)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aiohttp


@dataclass(frozen=True)
class Frame:
    id: str | None
    event: str | None
    data: str | None
    comments: tuple[str, ...]


class SseReader:
    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response

    async def frame(self, timeout_s: float = 5.0) -> Frame:
        """The next frame (lines up to a blank line); EOFError when the stream ends."""
        fields: dict[str, list[str]] = {}
        comments: list[str] = []
        while True:
            raw = await asyncio.wait_for(self.response.content.readline(), timeout_s)
            if not raw:
                raise EOFError("the stream ended")
            line = raw.decode().rstrip("\r\n")
            if not line:
                if fields or comments:
                    return Frame(
                        id=_joined(fields, "id"),
                        event=_joined(fields, "event"),
                        data=_joined(fields, "data"),
                        comments=tuple(comments),
                    )
                continue
            if line.startswith(":"):
                comments.append(line[1:].strip())
                continue
            name, _, value = line.partition(":")
            fields.setdefault(name, []).append(value.removeprefix(" "))

    async def events(self, count: int, timeout_s: float = 10.0) -> list[Frame]:
        """The next `count` event frames, skipping comments and the retry hint."""
        found: list[Frame] = []
        async with asyncio.timeout(timeout_s):
            while len(found) < count:
                frame = await self.frame(timeout_s)
                if frame.id is not None:
                    found.append(frame)
        return found


def _joined(fields: dict[str, list[str]], name: str) -> str | None:
    return "\n".join(fields[name]) if name in fields else None
