"""Two ASGI wrappers of the project's application (``marsha_runner/asgi.py``).

``observed``: every HTTP request gets a request id (the client's ``X-Request-ID`` when it is
plain and short, else a new one, answered in ``X-Request-ID``), the video id and job uuid of
its route when it has them, in the log context of everything it runs; and it is counted by
route name, method and status. It wraps the whole stack, so the runners' ``jobs/request``
fast path (past Django's middleware) is counted too.

``probe_routes``: ``/healthz``, ``/readyz`` and ``/metrics`` go straight to their views with
no middleware: no session, no CSRF, no HTTPS redirect, and no ``ALLOWED_HOSTS`` check (a
kubelet or a Prometheus calls a pod by its IP address; these views never build a URL from the
Host header). Access to ``/metrics`` is checked by its view (``access.py``).
"""

import logging
import re
import time
from functools import lru_cache

from django.conf import settings
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.exception import convert_exception_to_response
from django.urls import Resolver404, resolve

from marsha_runner.telemetry.context import (
    context_reset,
    context_set,
    request_id_clean,
    request_id_new,
)
from marsha_runner.telemetry.instruments import http_request_record

PROBE_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
UNMATCHED = "unmatched"
_UUID_RE = re.compile(r"^[0-9a-fA-F-]{32,36}$")
access_logger = logging.getLogger("marsha_runner.access")


@lru_cache(maxsize=4096)
def route_of(path: str) -> tuple[str, dict]:
    """(route name, {video_id, job_uuid} found in the path): what a request is about."""
    try:
        match = resolve(path)
    except Resolver404:
        return UNMATCHED, {}
    ids = {
        name: str(match.kwargs[key])
        for name, key in (("video_id", "video_id"), ("job_uuid", "job_uuid"))
        if key in match.kwargs and _UUID_RE.match(str(match.kwargs[key]))
    }
    return match.view_name or "unnamed", ids


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


def observed(application):
    """Wrap ``application``: request id, log context and HTTP metrics for each request."""

    async def wrapper(scope, receive, send):
        if scope["type"] != "http":
            return await application(scope, receive, send)
        request_id = request_id_clean(_header(scope, b"x-request-id")) or request_id_new()
        route, ids = route_of(scope["path"])
        tokens = context_set(request_id=request_id, **ids)
        status = [500]  # what uvicorn answers when the application raises before answering

        async def send_with_id(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message = {
                    **message,
                    "headers": [
                        *message.get("headers", ()),
                        (b"x-request-id", request_id.encode()),
                    ],
                }
            await send(message)

        started = time.perf_counter()
        try:
            return await application(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            http_request_record(
                route=route, method=scope["method"], status=status[0], seconds=seconds
            )
            if settings.LOG_ACCESS:
                access_logger.info(
                    "%s %s %s %.1f ms",
                    scope["method"],
                    route,
                    status[0],
                    seconds * 1000,
                    extra={"route": route, "status": status[0], "duration_ms": seconds * 1000},
                )
            context_reset(tokens)

    return wrapper


class ProbeASGIHandler(ASGIHandler):
    """Django's ASGI handler (URL resolution, errors) with no middleware at all."""

    def load_middleware(self, is_async=False):
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        self._middleware_chain = convert_exception_to_response(self._get_response_async)


def probe_routes(application):
    """Wrap ``application``: the probe paths go to a ProbeASGIHandler, the rest to it."""
    bare = ProbeASGIHandler()

    async def route(scope, receive, send):
        if scope["type"] == "http" and scope["path"] in PROBE_PATHS:
            return await bare(scope, receive, send)
        return await application(scope, receive, send)

    return route
