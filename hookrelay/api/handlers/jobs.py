"""Job status: a job's current state, folded from its events."""

from __future__ import annotations

from aiohttp import web

from hookrelay.api.http import job_id_param, json_response
from hookrelay.api.state import APP_ID, STORAGE
from hookrelay.api.views import job_view
from hookrelay.services.event_log import fold_job


async def get_job(request: web.Request) -> web.Response:
    job_id = job_id_param(request.match_info["job_id"], "job_id")
    job = await fold_job(request.app[STORAGE].events, request[APP_ID], job_id)
    return json_response(job_view(job))
