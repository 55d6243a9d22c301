"""A staff requeue of a runner job reopens its transcoding: the video follows it.

The runners app calls this through ``settings.RUNNERS_TRANSCODING_REOPEN_CALLBACK`` (it never
imports the videos app), inside the requeue's transaction: both change, or neither.
"""

import logging

from django.db import transaction

from marsha_runner.websocket.notify import video_state_changed

from .constants import DESTINATION_RE, UploadState
from .models import Video

logger = logging.getLogger(__name__)


class ReopenRefused(ValueError):
    """The video cannot follow its job back to work; str(err) says why and what to do."""


def video_transcoding_reopen(*, destination: str, base_name: str) -> str:
    """The video whose transcoding writes to ``destination`` goes back to ``processing`` when
    it is in ``error`` for that very version; already processing it: nothing to do. Refused
    (``ReopenRefused``) when the video moved on (a newer upload, or ready), since the requeued
    job would then transcode for nothing: Re-trigger is the way. Returns what it did, for
    staff ("" when there is no video of ours there)."""
    match = DESTINATION_RE.match(destination or "")
    if not match or match["stamp"] != str(base_name):
        return ""
    stamp = int(match["stamp"])
    video = Video.objects.select_for_update().filter(id=match["video_id"]).first()
    if video is None:
        return ""
    current = video.processing_stamp == stamp and video.launched_stamp == stamp
    if not current:
        raise ReopenRefused("its video has a newer upload since: use Re-trigger on the video")
    if video.upload_state == UploadState.PROCESSING:
        return ""
    if video.upload_state != UploadState.ERROR:
        raise ReopenRefused(
            f"its video is {video.upload_state}: use Re-trigger (or Transcode missing "
            "renditions) on the video"
        )
    video.upload_state = UploadState.PROCESSING
    video.upload_error_reason = ""
    video.save(update_fields=["upload_state", "upload_error_reason", "updated_on"])
    video_id = video.id
    transaction.on_commit(
        lambda: video_state_changed(
            video_id=video_id, state=UploadState.PROCESSING, payload={"upload_error_reason": ""}
        )
    )
    logger.info("Video %s stamp %s: back to processing (a job was requeued).", video_id, stamp)
    return "its video is back to processing"
