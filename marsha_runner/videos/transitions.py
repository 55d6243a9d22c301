"""What every flow of a video shares: the refusal, stamps, the ``processing`` check, the move
to ``error`` and the notification after commit."""

import logging
import time

from django.db import transaction

from marsha_runner.websocket.notify import video_state_changed

from .constants import UploadState
from .models import Video

logger = logging.getLogger(__name__)

# The reason of a ready video whose new version failed (its served one stays).
NEW_VERSION_FAILED = "The new version could not be made; the served one stays"


class VideoRefused(ValueError):
    """A client request this video cannot accept now; the message says why (a 4xx).

    ``field`` names the input at fault, so an API can point at it.
    """

    def __init__(self, message: str, *, field: str = "detail"):
        super().__init__(message)
        self.field = field


def video_next_stamp(video: Video) -> int:
    """Unix time now, bumped past every stamp already issued so stamps are unique per video."""
    issued = [s for s in (video.processing_stamp, video.active_stamp, video.launched_stamp) if s]
    return max([int(time.time()), *(s + 1 for s in issued)])


def video_is_processing(video: Video | None, stamp: int) -> bool:
    """Whether ``video`` is ``processing`` this very ``stamp``."""
    return (
        video is not None
        and video.upload_state == UploadState.PROCESSING
        and video.processing_stamp == int(stamp)
    )


@transaction.atomic
def video_error(*, video_id, stamp: int, reason: str) -> bool:
    """``processing`` → ``error`` with ``reason``, for this stamp only (a failed launch or
    transcoding, a watchdog giving up); ``ready`` again, the failure noted, when a served
    version exists (a failed re-trigger, switch or upload of a new version).

    False when the video is no longer processing this stamp: nothing is changed twice.
    """
    video = Video.objects.select_for_update().filter(id=video_id).first()
    if not video_is_processing(video, stamp):
        return False
    if video.active_stamp is not None:
        # A served version stays served: the video is ready again (it plays, the API says
        # so), and the failed attempt is noted in its reason, shown on its admin page.
        video.upload_state = UploadState.READY
        video.upload_error_reason = f"{NEW_VERSION_FAILED}: {reason}"[:1000]
    else:
        video.upload_state = UploadState.ERROR
        video.upload_error_reason = reason[:1000]
    video.save(update_fields=["upload_state", "upload_error_reason", "updated_on"])
    logger.info("Video %s stamp %s: %s (%s).", video_id, stamp, video.upload_state, reason)
    video_notify_on_commit(video)
    return True


def video_notify_on_commit(video: Video) -> None:
    """Tell the video's websocket room its state once the transaction commits."""
    video_id, state, reason = video.id, video.upload_state, video.upload_error_reason
    transaction.on_commit(
        lambda: video_state_changed(
            video_id=video_id, state=state, payload={"upload_error_reason": reason}
        )
    )
