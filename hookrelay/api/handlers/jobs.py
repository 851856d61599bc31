"""Job status: a job's current state, folded from its events."""

from __future__ import annotations

from aiohttp import web

from hookrelay.api.http import job_id_param, json_response, principal
from hookrelay.api.keys import GATEWAY
from hookrelay.api.views import job_view


async def get_job(request: web.Request) -> web.Response:
    job = await request.app[GATEWAY].job(
        principal(request),
        request.match_info["app_id"],
        job_id_param(request.match_info["job_id"], "job_id"),
    )
    return json_response(job_view(job))
