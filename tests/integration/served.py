"""The API app served in a test as `hookrelay api` serves it."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from hookrelay.api.server import AppRunner, handler_options
from hookrelay.settings import Settings


class ServedAsInProduction(TestServer):
    """aiohttp's test server, serving as `hookrelay api` does: through the API's own runner and
    connection options. aiohttp's own test server cancels a handler whose client goes away;
    `hookrelay api` does not, and tests must see what it does."""

    def __init__(self, app: web.Application, settings: Settings) -> None:
        super().__init__(app)
        self._options = handler_options(settings)

    async def _make_runner(self, handler_cancellation: bool = False, **kwargs: Any) -> AppRunner:
        return AppRunner(self.app, **self._options, **kwargs)
