"""The pages the API serves beside itself: the console (/console) and the live job page (/demo).
Plain HTML, CSS and JavaScript from the package, no build step and nothing from elsewhere."""

from __future__ import annotations

from importlib.resources import files

from aiohttp import web

from hookrelay.errors import NotFound

CONTENT_TYPES = {"html": "text/html", "js": "text/javascript", "css": "text/css"}
# Only a page's own files run or load, and it talks only to this server; what it shows of
# tenants' data is never parsed as HTML. No Referer leaves it (the console's token is in the
# fragment, which a Referer never holds, but its paths name apps).
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def page(directory: str, assets: tuple[str, ...]) -> web.RouteTableDef:
    """GET /<directory> (its index.html) and GET /<directory>/<asset>, for `assets` only."""
    routes = web.RouteTableDef()

    @routes.get(f"/{directory}")
    @routes.get(f"/{directory}/{{asset}}")
    async def serve(request: web.Request) -> web.Response:
        name = request.match_info.get("asset", "index.html")
        if name not in assets:
            raise NotFound("no such file")
        return web.Response(
            body=(files("hookrelay") / directory / name).read_bytes(),
            content_type=CONTENT_TYPES[name.rsplit(".", 1)[1]],
            charset="utf-8",
            headers=SECURITY_HEADERS,
        )

    return routes


CONSOLE_PATH = "/console"
CONSOLE_ASSETS = (
    "console.css",
    "main.js",
    "api.js",
    "dom.js",
    "ui.js",
    "common.js",
    "apps.js",
    "endpoints.js",
    "deliveries.js",
    "dead.js",
    "job.js",
)
CONSOLE = page(CONSOLE_PATH.lstrip("/"), ("index.html", *CONSOLE_ASSETS))
DEMO = page("demo", ("index.html", "demo.js", "demo.css"))
