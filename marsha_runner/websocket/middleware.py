"""JWT check on every websocket connection except, exactly, the runners' socket.io endpoint.

socket.io authenticates runners itself with their runner token; every other websocket needs a
simplejwt access token in ``?jwt=``, for an active user holding ``videos.change_video``. The
skip is decided by :func:`is_socketio_path`, which the ASGI router also uses, so a request that
reaches socket.io is exactly one that skipped the JWT check, and nothing else does.
"""

import logging
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import AccessToken

logger = logging.getLogger(__name__)

SOCKETIO_PATH = "/socket.io/"
CLOSE_FORBIDDEN = 4003
REQUIRED_PERMISSION = "videos.change_video"


def is_socketio_path(scope) -> bool:
    """True only for the literal path ``/socket.io/`` (the query string is not part of it).

    uvicorn percent-decodes ``path`` but keeps ``raw_path`` as sent, so both must be the
    literal: ``/socket.io%2F`` decodes to ``/socket.io/`` but its raw path differs. No
    normalisation happens here (``..``, ``//``, trailing bytes all make another path).
    """
    if scope.get("path") != SOCKETIO_PATH:
        return False
    raw_path = scope.get("raw_path")
    return raw_path is None or bytes(raw_path) == SOCKETIO_PATH.encode()


def _token_from_query(scope) -> str | None:
    query = parse_qs(bytes(scope.get("query_string", b"")).decode("latin-1"))
    values = query.get("jwt", [])
    return values[0] if len(values) == 1 and values[0] else None


def user_for_jwt(raw_token: str):
    """The active user owning a valid access token and the video change permission, else None."""
    try:
        token = AccessToken(raw_token)  # signature, expiry and token type ("access")
    except TokenError:
        return None
    user_id = token.get(api_settings.USER_ID_CLAIM)
    if user_id is None:
        return None
    user = get_user_model().objects.filter(**{api_settings.USER_ID_FIELD: user_id}).first()
    if user is None or not user.is_active or not user.has_perm(REQUIRED_PERMISSION):
        return None
    return user


async def refuse(receive, send, code: int = CLOSE_FORBIDDEN) -> None:
    """Accept then close with ``code``: a close before accept would be a bare HTTP 403."""
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.close", "code": code})


class JWTAuthMiddleware:
    """Puts the JWT's user in ``scope["user"]`` or closes the websocket with 4003."""

    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        if scope["type"] != "websocket" or is_socketio_path(scope):
            return await self.inner(scope, receive, send)
        raw_token = _token_from_query(scope)
        user = await database_sync_to_async(user_for_jwt)(raw_token) if raw_token else None
        if user is None:
            # The path only, never the query string: it holds the token.
            logger.info("Refused a websocket on %r: missing or invalid JWT.", scope.get("path"))
            return await refuse(receive, send)
        return await self.inner(dict(scope, user=user), receive, send)
