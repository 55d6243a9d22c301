"""Launch flow: enqueue the launch after commit, then prepare and create the job tree once."""

import logging
import re

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from marsha_runner.runners.priority import JobPriority
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
    transcoding_probe,
)
from marsha_runner.storage import legacy_storage, storage_copy, video_storage
from marsha_runner.storage.outages import Unreachable, outage_describe, storage_outage

from .constants import LEGACY_SOURCE_MARK, UploadState
from .models import Video
from .reasons import ErrorCode
from .transitions import (
    ERROR_FIELDS,
    video_error,
    video_error_clear,
    video_is_processing,
    video_notify_on_commit,
)

logger = logging.getLogger(__name__)

# The Celery task of a launch, by name: the task module (a shell) imports this one, so this one
# must not import it back; VideosConfig.ready imports it so the name is always registered.
LAUNCH_TASK = "marsha_runner.videos.tasks.video_launch_transcoding"


def video_launch_enqueue(*, video_id, stamp: int, staff: bool = False) -> bool:
    """Hand the launch of one upload to Celery; never raises (call it after commit). A staff
    transcoding's launch goes to the staff queue (``CELERY_STAFF_QUEUE``, issue 18).

    With the broker down the video stays ``processing`` without a job tree: that state is
    itself the record of the launch we owe, and ``runners_watchdog`` enqueues it again once
    the broker answers (no outbox table: the Video row already says what is missing). False,
    logged, when the broker refused it; the refusal is then marked on the video
    (``launch_refused_on``): nothing of that launch is queued, so the watchdog's next run (every
    minute) enqueues it at once instead of waiting ``VIDEO_LAUNCH_RECOVERY_DELAY``.
    """
    try:
        queue = settings.CELERY_STAFF_QUEUE if staff else settings.CELERY_TASK_DEFAULT_QUEUE
        current_app.tasks[LAUNCH_TASK].apply_async((str(video_id), int(stamp)), queue=queue)
    except Exception as err:  # noqa: BLE001 - a broker outage must not lose the committed state
        logger.warning(
            "Could not enqueue the launch of video %s stamp %s (%s): the watchdog will retry.",
            video_id,
            stamp,
            outage_describe(err),
        )
        video_launch_owed(video_id=video_id, stamp=stamp)
        return False
    return True


def video_launch_owed(*, video_id, stamp: int) -> None:
    """Mark a launch of which nothing is queued (the broker refused it, or its task gave up on
    an outage), so the watchdog's next run enqueues it at once."""
    try:
        Video.objects.filter(
            id=video_id, processing_stamp=stamp, launch_refused_on__isnull=True
        ).update(launch_refused_on=timezone.now())
    except Exception:  # noqa: BLE001 - the database too: the watchdog's delay still applies
        logger.warning("Could not mark the refused launch of video %s.", video_id)


def video_launch_transcoding(*, video_id, stamp: int, final_attempt: bool = True) -> None:
    """Create the runner job tree of one upload, or put the video in ``error`` with a reason.

    Unreachable is not unreadable: when the storage or the database does not answer, whatever
    failed, ``Unreachable`` propagates (the task retries with backoff, then the watchdog) and
    the video stays ``processing``. ``SourceUnreadable`` (the object may not be visible yet)
    propagates for a retry unless this is the ``final_attempt``; whatever else goes wrong ends
    in ``error``: a failed launch never leaves a video ``processing`` forever.
    """
    try:
        _video_launch(video_id=video_id, stamp=stamp)
    except Exception as err:  # noqa: BLE001 - sorted below: outage, media, anything else
        if storage_outage(err, video_storage()):
            raise Unreachable(f"storage or database unreachable ({type(err).__name__})") from err
        if isinstance(err, SourceRefused):
            _video_refused(video_id=video_id, stamp=stamp, err=err)
        elif isinstance(err, SourceUnreadable):
            if not final_attempt:
                raise
            code, detail = _unreadable_reason(video_id, stamp, err)
            video_error(video_id=video_id, stamp=stamp, code=code, detail=detail)
        else:
            logger.exception("Launch of video %s stamp %s failed.", video_id, stamp)
            detail = f"the transcoding could not be started: {type(err).__name__}: {err}"
            video_error(
                video_id=video_id, stamp=stamp, code=ErrorCode.LAUNCH_FAILED, detail=detail
            )


def _video_refused(*, video_id, stamp: int, err: SourceRefused) -> None:
    """A source that cannot be transcoded: its own words are ours (no tool output)."""
    detail = str(err) or "source refused"
    code = ErrorCode.NO_VIDEO_STREAM if "no video stream" in detail else ErrorCode.SOURCE_REFUSED
    video_error(video_id=video_id, stamp=stamp, code=code, detail=detail)


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
        thumbnail_key=video.thumbnail_key(stamp),
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
            staff = video.processing_by_staff
            transcoding_create(
                prepared=prepared, priority=JobPriority.STAFF if staff else JobPriority.UPLOAD
            )
            video.launched_stamp = stamp
            video.duration = prepared.duration
            video.launch_refused_on = None
            video.save(
                update_fields=["launched_stamp", "duration", "launch_refused_on", "updated_on"]
            )
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
                thumbnail_key=video.thumbnail_key(stamp),
                probed=probed,
            )
        else:
            locked.upload_state = UploadState.READY
            video_error_clear(locked)
            video_notify_on_commit(locked)
        locked.launched_stamp = stamp
        locked.launch_refused_on = None
        locked.save(
            update_fields=[
                "launched_stamp", "upload_state", *ERROR_FIELDS, "launch_refused_on", "updated_on",
            ]
        )  # fmt: skip
    names = ", ".join(f"{r}p" for r, _fps in missing) or "none: its ladder is complete"
    logger.info("Video %s stamp %s: missing renditions %s.", video.id, stamp, names)


def _launch_due(video: Video | None, stamp: int) -> bool:
    return video_is_processing(video, stamp) and video.launched_stamp != stamp


def _unreadable_reason(video_id, stamp: int, err: Exception) -> tuple[str, str]:
    """(code, detail) of an upload ffprobe could not read: the file is gone, or it is not a
    readable container (the detail then has ffprobe's own words, e.g. "Invalid data found
    when processing input", for staff only). The storage answered: the caller checked.

    A storage coming back from an outage answers HEADs before it serves every read, and
    ffprobe then says only that its read failed: such a failure, or a source that reads on a
    last look, raises ``Unreachable`` (the launch is owed, the video stays ``processing``).
    """
    key = Video(id=video_id).source_key(stamp)
    storage = video_storage()
    if not (storage.exists(key) and storage.size(key) > 0):
        return ErrorCode.SOURCE_MISSING, f"source unreadable: {key} is not in storage"
    if _READ_FAILED.search(str(err)):
        raise Unreachable("the storage lists the source but did not serve it") from err
    try:
        transcoding_probe(source_key=key)
    except SourceUnreadable as again:
        if _READ_FAILED.search(str(again)):
            raise Unreachable("the storage lists the source but did not serve it") from again
        return ErrorCode.UNREADABLE_CONTAINER, f"unreadable container: {again}"
    raise Unreachable("the source was read on a last look: its earlier reads were an outage")


# ffprobe's words when the transport failed, not the media: a 5xx, a 404 for an object the
# storage lists, a refused, reset or timed-out connection, an I/O error. (A 403 is a
# configuration error, not an outage: it errors the video with ffprobe's words.)
_READ_FAILED = re.compile(
    r"Server returned (?:5|404)|Connection refused|Connection reset|timed out|Input/output error|"
    r"did not answer|No URL for the source|No size for the source",
    re.IGNORECASE,
)
