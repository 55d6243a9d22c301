"""ASGI entry point: the library's socket.io server at exactly /socket.io/, the JWT-checked
Channels websockets, and Django over HTTP.

JWTAuthMiddleware is outermost: every websocket is checked unless its path is exactly
``/socket.io/`` (``is_socketio_path``), and the same predicate is the only way into socket.io,
where runners authenticate with their runner token.
"""

import gc
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marsha_runner.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_application = get_asgi_application()

from marsha_runner.runners.asgi import runner_fast_routes  # noqa: E402

# jobs/request skips the middleware stack (runners/asgi.py): a fleet calls it at once.
django_application = runner_fast_routes(django_application)

from marsha_runner.observability.asgi import observed, probe_routes  # noqa: E402

# /healthz, /readyz and /metrics skip it too: probes call by IP, outside authentication.
django_application = probe_routes(django_application)

import socketio  # noqa: E402

from marsha_runner.runners.socket import sio  # noqa: E402
from marsha_runner.websocket.middleware import (  # noqa: E402
    SOCKETIO_PATH,
    JWTAuthMiddleware,
    is_socketio_path,
)
from marsha_runner.websocket.routing import websocket_router  # noqa: E402

__all__ = ("SOCKETIO_PATH", "application")

socketio_application = socketio.ASGIApp(sio, socketio_path="socket.io")


async def _dispatch(scope, receive, send):
    """Route by exact path: only ``/socket.io/`` reaches socket.io."""
    if is_socketio_path(scope):
        return await socketio_application(scope, receive, send)
    if scope["type"] == "websocket":
        return await websocket_router(scope, receive, send)
    return await django_application(scope, receive, send)


# Request ids, log context and HTTP metrics around everything HTTP (observability/asgi.py).
_checked = observed(JWTAuthMiddleware(_dispatch))


async def application(scope, receive, send):
    """Answer lifespan here (Django and socket.io have no startup work), route the rest."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    return await _checked(scope, receive, send)


# Startup leaves ~110,000 long-lived objects (Django, DRF, the library, boto3...): every full
# collection walked them all, a few times per thousand requests, costing more per request than
# Django's whole handler (bench/dispatch.py, note i6-dispatch). Frozen, collections only look
# at what requests allocate.
gc.collect()
gc.freeze()
