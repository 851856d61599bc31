"""An always-200 webhook sink in its own process, counting what it receives.

`GET /stats` answers {"received", "unique"}: requests, and distinct (path, webhook-id) pairs.
"""

from __future__ import annotations

import argparse
import time

from aiohttp import web


class Tally:
    def __init__(self) -> None:
        self.received = 0
        # path -> webhook-id -> first arrival (unix seconds)
        self.arrivals: dict[str, dict[str, float]] = {}


TALLY = web.AppKey("tally", Tally)


async def receive(request: web.Request) -> web.Response:
    await request.read()
    tally = request.app[TALLY]
    tally.received += 1
    at_path = tally.arrivals.setdefault(request.path, {})
    at_path.setdefault(request.headers.get("webhook-id", ""), time.time())
    return web.Response(text="ok")


async def stats(request: web.Request) -> web.Response:
    """Counts, for one path (`?path=`) or all; `?ids=1` adds each webhook-id's first arrival."""
    tally = request.app[TALLY]
    path = request.query.get("path")
    paths = [path] if path is not None else list(tally.arrivals)
    chosen = {p: tally.arrivals.get(p, {}) for p in paths}
    body: dict[str, object] = {
        "received": tally.received,
        "unique": sum(len(ids) for ids in chosen.values()),
    }
    if request.query.get("ids"):
        body["arrivals"] = chosen
    return web.json_response(body)


async def reset(request: web.Request) -> web.Response:
    request.app[TALLY] = Tally()
    return web.json_response({"ok": True})


def create_sink() -> web.Application:
    app = web.Application()
    app[TALLY] = Tally()
    app.router.add_get("/stats", stats)
    app.router.add_post("/reset", reset)
    app.router.add_post("/{tail:.*}", receive)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="an always-200 webhook sink")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    web.run_app(create_sink(), host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
