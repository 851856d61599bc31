"""Run the API's HTTP server: the one place its connections are bounded in time."""

from __future__ import annotations

from aiohttp import web

from hookrelay.api.app import create_app
from hookrelay.settings import Settings

# After an early answer (413, 408) to a request whose body is still arriving, the rest of it is
# read and dropped for this long, so that the client sees the answer; then the connection
# closes. aiohttp's default is 10 s.
LINGERING_S = 2.0


def run_api(settings: Settings, host: str, port: int) -> None:
    """Serve the API until SIGINT/SIGTERM (`hookrelay api`, and so `hookrelay dev` too).

    aiohttp starts one timer per connection: at connect, and again after each answer. When it
    fires while no request is being handled, the connection closes. With the read timeout as
    that timer, a client must finish a request's headers within it, and an idle kept-alive
    connection closes after it; `read_json` bounds the body by the same time.
    """
    web.run_app(
        create_app(settings),
        host=host,
        port=port,
        print=None,
        access_log=None,
        keepalive_timeout=settings.request_read_timeout_s,
        lingering_time=LINGERING_S,
    )
