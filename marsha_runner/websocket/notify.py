"""Tell the websocket clients following a video that its state changed.

Sync on purpose: the videos services call it from ``transaction.on_commit`` in a request
thread or a Celery worker. With ``REDIS_URL`` the channel layer is channels_redis, so a change
made in a worker reaches the web process holding the websocket.
"""

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)


def video_group_name(video_id) -> str:
    """The channel-layer group of one video's followers."""
    return f"video-{video_id}"


def video_state_changed(*, video_id, state: str, payload: dict | None = None) -> None:
    """Push ``{"type": "video.state", "video", "state", **payload}`` to the video's group.

    Never raises: a notification lost must not roll back or break the state change itself.
    """
    message = {**(payload or {}), "type": "video.state", "video": str(video_id), "state": state}
    try:
        layer = get_channel_layer()
        if layer is None:
            logger.warning("No channel layer configured: video %s state not pushed.", video_id)
            return
        async_to_sync(layer.group_send)(video_group_name(video_id), message)
    except Exception:  # noqa: BLE001 - a push is best effort; the state change stands.
        logger.exception("Could not push the state of video %s.", video_id)
