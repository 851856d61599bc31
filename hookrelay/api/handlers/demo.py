"""The live job page (/demo): plain HTML and JavaScript that follow a job over SSE."""

from __future__ import annotations

from importlib.resources import files

from aiohttp import web

from hookrelay.errors import NotFound

ASSETS = {
    "index.html": "text/html",
    "demo.js": "text/javascript",
    "demo.css": "text/css",
}
# Only this page's own files run or load; the events it shows are never parsed as HTML.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


async def demo_page(request: web.Request) -> web.Response:
    name = request.match_info.get("asset", "index.html")
    content_type = ASSETS.get(name)
    if content_type is None:
        raise NotFound("no such file")
    return web.Response(
        body=(files("hookrelay") / "demo" / name).read_bytes(),
        content_type=content_type,
        charset="utf-8",
        headers={
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "Cache-Control": "no-cache",
        },
    )
