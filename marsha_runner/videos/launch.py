"""Launch flow: enqueue the launch after commit, then prepare and create the job tree once."""

import logging

from celery import current_app
from django.db import transaction

from marsha_runner.runners.transcoding import (
    SourceRefused,
    SourceUnreadable,
    transcoding_create,
    transcoding_discard,
    transcoding_prepare,
)
from marsha_runner.storage import video_storage

from .models import Video
from .transitions import video_error, video_is_processing

logger = logging.getLogger(__name__)

SOURCE_UNREADABLE = "source unreadable"  # not in storage (any more) when the launch read it


UNREADABLE_CONTAINER = "unreadable container"  # in storage, but not a container ffprobe reads
# The Celery task of a launch, by name: the task module (a shell) imports this one, so this one
# must not import it back; VideosConfig.ready imports it so the name is always registered.
LAUNCH_TASK = "marsha_runner.videos.tasks.video_launch_transcoding"


def video_launch_enqueue(*, video_id, stamp: int) -> bool:
    """Hand the launch of one upload to Celery; never raises (call it after commit).

    With the broker down the video stays ``processing`` without a job tree: that state is
    itself the record of the launch we owe, and ``runners_watchdog`` enqueues it again once
    the broker answers (no outbox table: the Video row already says what is missing). False,
    logged, when the broker refused it.
    """
    try:
        current_app.tasks[LAUNCH_TASK].delay(str(video_id), int(stamp))
    except Exception:  # noqa: BLE001 - a broker outage must not lose the committed state
        logger.exception(
            "Could not enqueue the launch of video %s stamp %s: the watchdog will retry.",
            video_id,
            stamp,
        )
        return False
    return True


def video_launch_transcoding(*, video_id, stamp: int, final_attempt: bool = True) -> None:
    """Create the runner job tree of one upload, or put the video in ``error`` with a reason.

    ``SourceUnreadable`` (the object may not be visible yet) propagates for a retry unless this
    is the ``final_attempt``; whatever else goes wrong ends in ``error``: a failed launch never
    leaves a video ``processing`` forever.
    """
    try:
        _video_launch(video_id=video_id, stamp=stamp)
    except SourceRefused as err:
        video_error(video_id=video_id, stamp=stamp, reason=str(err) or "source refused")
    except SourceUnreadable as err:
        if not final_attempt:
            raise
        video_error(
            video_id=video_id, stamp=stamp, reason=_unreadable_reason(video_id, stamp, err)
        )
    except Exception:  # noqa: BLE001 - any other failure must still end in error
        logger.exception("Launch of video %s stamp %s failed.", video_id, stamp)
        video_error(video_id=video_id, stamp=stamp, reason="the transcoding could not be started")


def _video_launch(*, video_id, stamp: int) -> None:
    """Prepare (probe, thumbnail: slow I/O, no lock held, so other requests on this video
    are never kept waiting), then in one transaction lock the row, re-check the state read
    before and create the job tree with our ``launched_stamp`` marker, or discard."""
    video = Video.objects.filter(id=video_id).first()
    if not _launch_due(video, stamp):
        logger.info("Launch of video %s stamp %s: nothing to do.", video_id, stamp)
        return
    prepared = transcoding_prepare(
        source_key=video.source_key(stamp),
        destination=video.output_prefix(stamp),
        base_name=str(stamp),
    )
    discard = True
    try:
        with transaction.atomic():
            video = Video.objects.select_for_update().filter(id=video_id).first()
            if not _launch_due(video, stamp):
                # Changed while we probed: a new upload, a deletion, or a concurrent launch
                # that won (its tree uses the same thumbnail key: keep it then).
                discard = video is None or video.launched_stamp != stamp
                logger.info("Launch of video %s stamp %s: done meanwhile.", video_id, stamp)
                return
            # Same transaction as our marker: both the job tree and launched_stamp, or neither.
            transcoding_create(prepared=prepared)
            video.launched_stamp = stamp
            video.duration = prepared.duration
            video.save(update_fields=["launched_stamp", "duration", "updated_on"])
            discard = False
    finally:
        if discard:
            transcoding_discard(prepared=prepared)


def _launch_due(video: Video | None, stamp: int) -> bool:
    return video_is_processing(video, stamp) and video.launched_stamp != stamp


def _unreadable_reason(video_id, stamp: int, err: Exception) -> str:
    """Why ffprobe could not read an upload: the file is gone, or it is not a readable
    container (then ffprobe's own words, e.g. "Invalid data found when processing input")."""
    key = Video(id=video_id).source_key(stamp)
    storage = video_storage()
    try:
        present = storage.exists(key) and storage.size(key) > 0
    except Exception:  # noqa: BLE001 - a storage that cannot say: keep the generic reason
        present = False
    if not present:
        return SOURCE_UNREADABLE
    return f"{UNREADABLE_CONTAINER}: {err}" if str(err) else UNREADABLE_CONTAINER
