"""A staff requeue of a runner job reopens its transcoding: the video follows it.

The runners app calls this through ``settings.RUNNERS_TRANSCODING_REOPEN_CALLBACK`` (it never
imports the videos app), inside the requeue's transaction: both change, or neither.
"""

import logging

from .constants import DESTINATION_RE, UploadState
from .models import Video
from .transitions import video_error_clear, video_notify_on_commit

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
    cleared = video_error_clear(video)
    video.save(update_fields=["upload_state", *cleared, "updated_on"])
    video_notify_on_commit(video)
    logger.info("Video %s stamp %s: back to processing (a job was requeued).", video.id, stamp)
    return "its video is back to processing"
