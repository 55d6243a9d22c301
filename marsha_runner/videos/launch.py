"""Launch flow: enqueue the launch after commit, then prepare and create the job tree once."""

import logging

from celery import current_app
from django.db import transaction

from marsha_runner.runners.renditions import (
    transcoding_add_renditions,
    transcoding_ladder_of,
    transcoding_renditions_probe,
)
from marsha_runner.runners.transcoding import (
    SourceRefused,
    SourceUnreadable,
    transcoding_create,
    transcoding_discard,
    transcoding_prepare,
)
from marsha_runner.storage import legacy_storage, storage_copy, video_storage

from .constants import LEGACY_SOURCE_MARK, UploadState
from .models import Video
from .transitions import video_error, video_is_processing, video_notify_on_commit

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
    source_key = video_launch_source(video=video, stamp=stamp)
    if stamp == video.active_stamp:  # the served version: its missing renditions only
        _video_add_missing(video=video, stamp=stamp, source_key=source_key)
        return
    prepared = transcoding_prepare(
        source_key=source_key,
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


def video_launch_source(*, video: Video, stamp: int) -> str:
    """The key the launch of ``stamp`` reads: its own upload, or the object a staff action
    named (``transcode_source``, read where it is); a legacy mp4 still in the AWS bucket is
    copied to the upload key first (CopyObject when both are S3 behind one endpoint). Slow
    I/O: only here, in the task, outside any transaction."""
    source = video.transcode_source
    if not source:
        return video.source_key(stamp)
    if not source.startswith(LEGACY_SOURCE_MARK):
        return source
    key = video.source_key(stamp)
    legacy_key = source[len(LEGACY_SOURCE_MARK) :]
    if not legacy_storage().exists(legacy_key):
        raise SourceRefused("its legacy mp4 is no longer in the AWS bucket")
    how = storage_copy(legacy_storage(), legacy_key, video_storage(), key)
    logger.info("Video %s stamp %s: legacy mp4 %s (%s).", video.id, stamp, legacy_key, how)
    return key


def _video_add_missing(*, video: Video, stamp: int, source_key: str) -> None:
    """Jobs for the renditions the served version's ladder lacks: the ladder and the stored
    renditions probed first (no lock), then the row locked, re-checked and the jobs created
    with the ``launched_stamp`` marker. A complete ladder puts the video back to ready."""
    have = sorted({int(r) for r in video.resolutions or []})
    ladder = transcoding_ladder_of(key=source_key)
    missing = [(r, fps) for r, fps in ladder if r not in have]
    existing = {r: video.rendition_video_key(stamp, r) for r in have}
    probed = transcoding_renditions_probe(source_key=source_key, existing=existing)
    with transaction.atomic():
        locked = Video.objects.select_for_update().filter(id=video.id).first()
        if not _launch_due(locked, stamp):
            return
        if missing:
            transcoding_add_renditions(
                source_key=source_key,
                destination=video.output_prefix(stamp),
                base_name=str(stamp),
                existing=existing,
                missing=missing,
                probed=probed,
            )
        else:
            locked.upload_state = UploadState.READY
            locked.upload_error_reason = ""
            video_notify_on_commit(locked)
        locked.launched_stamp = stamp
        locked.save(update_fields=["launched_stamp", "upload_state", "upload_error_reason"])
    names = ", ".join(f"{r}p" for r, _fps in missing) or "none: its ladder is complete"
    logger.info("Video %s stamp %s: missing renditions %s.", video.id, stamp, names)


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
