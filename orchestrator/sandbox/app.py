"""HTTP routes: translate requests into SandboxState calls and Answers into responses.

Routes: POST /v1/run, GET /v1/status/{id}, GET /v1/credits (Bearer auth);
GET /cdn/{id}/{index}.{ext} (no auth); GET /_sandbox/stats, /_sandbox/predictions
and /_sandbox/arrivals/{endpoint} (no auth, inspection only).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from .config import ENDPOINTS
from .state import Answer, SandboxState


class DroppedConnection(Exception):
    """Raised on purpose after the response head: uvicorn then aborts the socket."""


class DropFilter(logging.Filter):
    """Hides uvicorn's traceback for a deliberate drop: it logs any exception from the app."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, DroppedConnection)


class _Dropped(Response):
    """Announces a body it never sends, so the client sees a truncated answer."""

    def __init__(self) -> None:
        super().__init__(status_code=200)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", b"64")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        raise DroppedConnection("sandbox fault: connection dropped")


# host, host:port, [v6] or [v6]:port: nothing that could bend the URL built from it.
_HOST_HEADER = re.compile(r"(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?")


def _origin(request: Request) -> str | None:
    """http://<the Host header>: output URLs then name the host this client dialled, which
    it can reach (a sandbox bound on 0.0.0.0 has no one address to hand out). None when
    the header is missing, odd, or itself a wildcard address: the server's own URL is used.
    """
    host = request.headers.get("host", "")
    if not _HOST_HEADER.fullmatch(host):
        return None
    name = host[1 : host.index("]")] if host.startswith("[") else host.partition(":")[0]
    try:
        if ipaddress.ip_address(name).is_unspecified:
            return None
    except ValueError:
        pass  # a name, e.g. localhost or the machine's hostname
    return f"http://{host}"


def _dumps(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


async def _respond(answer: Answer) -> Response:
    if answer.delay > 0:
        await anyio.sleep(answer.delay)
    if answer.drop:
        return _Dropped()
    if isinstance(answer.body, bytes):
        return Response(answer.body, answer.status, dict(answer.headers), answer.media_type)
    return Response(_dumps(answer.body), answer.status, dict(answer.headers), answer.media_type)


def create_app(state: SandboxState) -> Starlette:
    """The ASGI app serving `state`."""

    async def run(request: Request) -> Response:
        body = await request.body()
        auth, webhook_url = (
            request.headers.get("authorization"),
            request.query_params.get("webhook_url"),
        )
        return await _respond(state.handle_run(auth, body, webhook_url))

    async def status(request: Request) -> Response:
        auth = request.headers.get("authorization")
        prediction_id = request.path_params["prediction_id"]
        return await _respond(state.handle_status(auth, prediction_id, origin=_origin(request)))

    async def credits(request: Request) -> Response:
        return await _respond(state.handle_credits(request.headers.get("authorization")))

    async def cdn(request: Request) -> Response:
        params = request.path_params
        return await _respond(state.handle_download(params["prediction_id"], params["name"]))

    async def stats(request: Request) -> Response:
        return JSONResponse(state.stats())

    async def predictions(request: Request) -> Response:
        return JSONResponse({"predictions": [p.to_json() for p in state.predictions()]})

    async def arrivals(request: Request) -> Response:
        endpoint = request.path_params["endpoint"]
        if endpoint not in ENDPOINTS:
            message = f"endpoint must be one of {', '.join(ENDPOINTS)}"
            return JSONResponse({"error": "NotFound", "message": message}, 404)
        return JSONResponse({"endpoint": endpoint, "arrivals": state.arrivals(endpoint)})

    routes = [
        Route("/v1/run", run, methods=["POST"]),
        Route("/v1/status/{prediction_id:str}", status, methods=["GET"]),
        Route("/v1/credits", credits, methods=["GET"]),
        Route("/cdn/{prediction_id:str}/{name:str}", cdn, methods=["GET"]),
        Route("/_sandbox/stats", stats, methods=["GET"]),
        Route("/_sandbox/predictions", predictions, methods=["GET"]),
        Route("/_sandbox/arrivals/{endpoint:str}", arrivals, methods=["GET"]),
    ]
    return Starlette(routes=routes)
