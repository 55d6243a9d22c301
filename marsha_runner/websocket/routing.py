"""Websocket routes (Channels); asgi.py puts them behind JWTAuthMiddleware. Unknown paths close."""

from channels.routing import URLRouter
from django.urls import path, re_path

from marsha_runner.websocket.consumers import VideoStateConsumer
from marsha_runner.websocket.middleware import refuse

CLOSE_NOT_FOUND = 4404


async def unknown_path(scope, receive, send):
    """Close cleanly instead of letting URLRouter raise (a 500 in the server log)."""
    await refuse(receive, send, code=CLOSE_NOT_FOUND)


websocket_urlpatterns = [
    path("ws/videos/<uuid:video_id>/", VideoStateConsumer.as_asgi()),
    re_path(r"", unknown_path),
]

websocket_router = URLRouter(websocket_urlpatterns)
