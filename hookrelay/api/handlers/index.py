"""GET /: what this server is, and where to go from here."""

from __future__ import annotations

from aiohttp import web

from hookrelay import __version__
from hookrelay.api.handlers.pages import CONSOLE_PATH
from hookrelay.api.http import json_response
from hookrelay.api.state import SETTINGS

LINKS = {
    "openapi": "/openapi.json",
    # The project has no public page of its own yet: the API's description is its reference.
    "docs": "/openapi.json",
    "health": "/healthz",
    "ready": "/readyz",
    "metrics": "/metrics",
    "console": CONSOLE_PATH,
}
# Only where the live job page is served (HOOKRELAY_DEMO_PAGE).
DEMO_LINK = {"demo": "/demo"}


async def index(request: web.Request) -> web.Response:
    links = {**LINKS, **(DEMO_LINK if request.app[SETTINGS].demo_page else {})}
    return json_response({"name": "hookrelay", "version": __version__, "links": links})
