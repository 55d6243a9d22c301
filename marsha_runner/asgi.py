"""ASGI entry point: Django over HTTP, the library's socket.io server at exactly /socket.io/."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marsha_runner.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_application = get_asgi_application()

import socketio  # noqa: E402

from marsha_runner.runners.socket import sio  # noqa: E402

SOCKETIO_PATH = "/socket.io/"
socketio_application = socketio.ASGIApp(sio, socketio_path="socket.io")


async def application(scope, receive, send):
    """Route by exact path: only ``/socket.io/`` reaches socket.io."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope.get("path") == SOCKETIO_PATH:
        return await socketio_application(scope, receive, send)
    return await django_application(scope, receive, send)
