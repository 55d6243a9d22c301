"""socket.io for runners: the library's server with a connect handler that refuses strangers.

The library's own handler logs the runner token, raises on a missing ``auth`` and, on
python-socketio >= 5.18, does not refuse unknown tokens (DESIGN §7.2). Registering ours on
the same event replaces it.
"""

import logging

import socketio
from asgiref.sync import sync_to_async
from django_peertube_runner_connector.models import Runner
from django_peertube_runner_connector.socket import sio

__all__ = ("sio",)

logger = logging.getLogger(__name__)
NAMESPACE = "/runners"


def _runner_name(token):
    return Runner.objects.filter(runnerToken=token).values_list("name", flat=True).first()


async def connect(sid, environ, auth=None):
    token = auth.get("runnerToken") if isinstance(auth, dict) else None
    name = await sync_to_async(_runner_name)(token) if isinstance(token, str) and token else None
    if name is None:
        logger.info("Refused a runner socket %s: missing or unknown runner token.", sid)
        raise socketio.exceptions.ConnectionRefusedError("unknown_runner_token")
    logger.info("Runner %s connected (sid %s).", name, sid)


sio.on("connect", namespace=NAMESPACE)(connect)
