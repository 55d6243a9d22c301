"""The websocket a client keeps open to follow one video's transcoding."""

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from marsha_runner.websocket.middleware import CLOSE_FORBIDDEN
from marsha_runner.websocket.notify import video_group_name


class VideoStateConsumer(AsyncJsonWebsocketConsumer):
    """Joins ``video-<id>`` and forwards what ``notify.video_state_changed`` sends there."""

    async def connect(self):
        if self.scope.get("user") is None:
            # Only reachable if mounted without JWTAuthMiddleware: refuse rather than trust.
            await self.accept()
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.group_name = video_group_name(self.scope["url_route"]["kwargs"]["video_id"])
        await self.channel_layer.group_add(self.group_name, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        if getattr(self, "group_name", None):
            await self.channel_layer.group_discard(self.group_name, self.channel_name)

    async def video_state(self, event):
        """Handler of ``{"type": "video.state", ...}`` group messages."""
        await self.send_json(event)
