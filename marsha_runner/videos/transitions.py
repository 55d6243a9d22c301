"""What every flow of a video shares: the refusal, stamps, the ``processing`` check, the move
to ``error`` and the notification after commit."""

import logging
import time

from django.db import transaction

from marsha_runner.websocket.notify import video_state_changed

from .constants import UploadState
from .models import Video
from .observe import video_outcome_observe
from .reasons import public_reason

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


# The three fields saying why a video is in error (reasons.py): set and cleared together.
ERROR_FIELDS = ["upload_error_reason", "upload_error_code", "upload_error_detail"]


def video_error_clear(video: Video) -> list[str]:
    """Forget why ``video`` was in error (it moves on); the fields to save."""
    video.upload_error_reason = video.upload_error_code = video.upload_error_detail = ""
    return list(ERROR_FIELDS)


def video_error_set(video: Video, *, code: str, detail: str = "") -> list[str]:
    """Why ``video`` is in error: the public code and sentence, the detail for staff only
    (tool output, a runner's message, keys); the fields to save."""
    video.upload_error_code = code
    video.upload_error_reason = public_reason(code, detail=detail)[:1000]
    video.upload_error_detail = detail[:5000]
    return list(ERROR_FIELDS)


@transaction.atomic
def video_error(*, video_id, stamp: int, code: str, detail: str = "") -> bool:
    """``processing`` → ``error`` with the reason ``code`` (``reasons.ErrorCode``) and its
    ``detail`` for staff, for this stamp only (a failed launch or transcoding, a watchdog
    giving up); ``ready`` again, the failure noted, when a served version exists (a failed
    re-trigger, switch or upload of a new version).

    False when the video is no longer processing this stamp: nothing is changed twice.
    """
    video = Video.objects.select_for_update().filter(id=video_id).first()
    if not video_is_processing(video, stamp):
        return False
    if video.active_stamp is not None:
        # A served version stays served: the video is ready again (it plays, the API says
        # so), and the failed attempt is noted in its reason, shown on its admin page.
        video.upload_state = UploadState.READY
        fields = video_error_set(video, code=code, detail=detail)
        video.upload_error_reason = f"{NEW_VERSION_FAILED}: {video.upload_error_reason}"[:1000]
    else:
        video.upload_state = UploadState.ERROR
        fields = video_error_set(video, code=code, detail=detail)
    video.save(update_fields=["upload_state", *fields, "updated_on"])
    logger.info(
        "Video %s stamp %s: %s %s (%s).", video_id, stamp, video.upload_state, code, detail
    )
    video_notify_on_commit(video)
    video_outcome_observe(video, ready=False)
    return True


def video_notify_on_commit(video: Video) -> None:
    """Tell the video's websocket room its state once the transaction commits: the state, its
    error, when the served version became playable and its resolutions (issue 18)."""
    video_id, state = video.id, video.upload_state
    payload = {
        "upload_error_reason": video.upload_error_reason,
        "playable_on": video.playable_on.isoformat() if video.playable_on else None,
        "resolutions": list(video.resolutions or []),
    }
    if video.upload_error_code:
        payload["upload_error_code"] = video.upload_error_code
    transaction.on_commit(
        lambda: video_state_changed(video_id=video_id, state=state, payload=payload)
    )
