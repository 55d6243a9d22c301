"""Completion flow: the runners app's callbacks serve a processing video from its first
rendition (a first upload), then move it to ready or error.

What a re-upload of a ready video serves meanwhile (issue 18): its previous, complete version,
until the new ladder is complete; a partial new ladder is never mixed in (the previous version
has every rung, the new one a few). A first upload, or a version already served (missing
renditions added by staff), is served from its first stored rendition: each next one joins
its master playlist (rewritten by one atomic replace in the runners app) and ``resolutions``.
"""

import logging

from django.db import transaction
from django.utils import timezone

from marsha_runner.runners.outcome import TranscodingOutcome, TranscodingProgress
from marsha_runner.runners.sources import transcoding_release_source
from marsha_runner.runners.transcoding import transcoding_outcome_get
from marsha_runner.storage import storage_is_s3, video_storage
from marsha_runner.telemetry.context import context_bound

from .constants import DESTINATION_RE, StorageLocation, TranscodePipeline, UploadState
from .media_urls import video_refresh_urls
from .models import Video
from .observe import video_outcome_observe
from .reasons import ErrorCode
from .selectors import video_id_of_destination
from .transitions import (
    video_error,
    video_error_clear,
    video_is_processing,
    video_notify_on_commit,
)

logger = logging.getLogger(__name__)


def video_transcoding_ended(*, outcome: TranscodingOutcome) -> None:
    """The runners app's callback (``settings.RUNNERS_TRANSCODING_ENDED_CALLBACK``).

    It may come more than once for one transcoding: only the first call for a ``processing``
    video whose stamp matches changes anything. Never raises into the library.
    """
    try:
        # The lines it logs (and the tasks it enqueues) carry the video's id.
        with context_bound(video_id=video_id_of_destination(outcome.destination)):
            _video_transcoding_ended(outcome)
    except Exception:  # noqa: BLE001 - never raise into the library (docs/design.md#callback-per-rendition)
        logger.exception("Transcoding-ended callback failed for %s.", outcome.destination)


def video_transcoding_complete(*, video: Video) -> bool:
    """Apply the outcome of ``video``'s transcoding once all its jobs are finished.

    The entry point for whoever finds a ``processing`` video whose callback never came (a
    watchdog, an operator). True if it moved the video to ``ready`` or ``error``; False while
    a job is still active, when no job tree exists, or when it was already applied.
    """
    stamp = video.processing_stamp
    if not video_is_processing(video, stamp) or video.launched_stamp != stamp:
        return False
    outcome = transcoding_outcome_get(destination=video.output_prefix(stamp))
    if outcome is None:
        return False
    return _video_transcoding_ended(outcome)


def _video_transcoding_ended(outcome: TranscodingOutcome) -> bool:
    """True if this call moved the video (the first one for its processing stamp)."""
    match = DESTINATION_RE.match(outcome.destination or "")
    if not match or match["stamp"] != str(outcome.base_name):
        logger.warning("Transcoding ended for an unknown destination %r.", outcome.destination)
        return False
    video_id, stamp = match["video_id"], int(match["stamp"])

    video = Video.objects.filter(id=video_id).first()
    if not video_is_processing(video, stamp):
        logger.info("Transcoding of video %s stamp %s ended again: ignored.", video_id, stamp)
        return False
    # Storage round trips first (one per rendition file: seconds on S3), with no lock held.
    missing, thumbnail_exists = [], False
    if outcome.succeeded:
        missing = _missing_outputs(video, stamp, outcome.resolutions)
        thumbnail_exists = video_storage().exists(video.thumbnail_key(stamp))

    with transaction.atomic():
        video = Video.objects.select_for_update().filter(id=video_id).first()
        if not video_is_processing(video, stamp):  # re-checked under the lock
            logger.info("Transcoding of video %s stamp %s ended again: ignored.", video_id, stamp)
            return False
        if not outcome.succeeded:
            acted = video_error(
                video_id=video_id,
                stamp=stamp,
                code=ErrorCode.TRANSCODING_FAILED,
                detail=outcome.error or "transcoding failed",
            )
        elif missing:
            acted = video_error(
                video_id=video_id,
                stamp=stamp,
                code=ErrorCode.RENDITIONS_MISSING,
                detail="renditions missing from storage: " + ", ".join(missing),
            )
        else:
            _video_ready(video, stamp, outcome.resolutions, thumbnail_exists=thumbnail_exists)
            transaction.on_commit(lambda: _release_source(outcome.destination))
            acted = True
    # An errored video keeps its upload until cleanup_sources' retention: a staff requeue of
    # its job or a Re-trigger starts from it.
    return acted


def _missing_outputs(video: Video, stamp: int, resolutions) -> list[str]:
    """Keys the ready version would serve but storage does not hold (never ready too early)."""
    if not resolutions:
        return ["every rendition"]
    storage = video_storage()
    keys = [video.master_playlist_key(stamp)]
    for resolution in resolutions:
        keys += [
            video.rendition_playlist_key(stamp, resolution),
            video.rendition_video_key(stamp, resolution),
        ]
    return [key.rsplit("/", 1)[-1] for key in keys if not storage.exists(key)]


def _video_ready(video: Video, stamp: int, resolutions, *, thumbnail_exists: bool) -> None:
    video.upload_state = UploadState.READY
    video_error_clear(video)
    _video_serve(video, stamp, resolutions, thumbnail_exists=thumbnail_exists)
    logger.info("Video %s stamp %s: ready %s.", video.id, stamp, video.resolutions)
    video_outcome_observe(video, ready=True)


def _video_serve(video: Video, stamp: int, resolutions, *, thumbnail_exists: bool) -> None:
    """Serve ``stamp`` with ``resolutions`` (saved, URLs refreshed, followers told after
    commit). ``playable_on`` marks when the served version became playable: now, unless this
    version was already served (its first rendition came earlier)."""
    if video.active_stamp != int(stamp) or video.playable_on is None:
        video.playable_on = timezone.now()
    video.uploaded_on = Video.stamp_to_datetime(stamp)
    video.resolutions = sorted({int(r) for r in resolutions})
    video.transcode_pipeline = TranscodePipeline.PEERTUBE
    video.storage_location = storage_location_of(video_storage())
    video.full_clean()
    video.save()
    video_refresh_urls(video=video, thumbnail_exists=thumbnail_exists)
    video_notify_on_commit(video)


def video_transcoding_progress(*, progress: TranscodingProgress) -> None:
    """The runners app's progress callback (``settings.RUNNERS_TRANSCODING_PROGRESS_CALLBACK``):
    renditions stored while others are still to come. Never raises into the library."""
    try:
        _video_transcoding_progress(progress)
    except Exception:  # noqa: BLE001 - never raise into the library
        logger.exception("Transcoding progress failed for %s.", progress.destination)


def _serves_partial(video: Video | None, stamp: int) -> bool:
    """A processing version is served before it is complete when nothing else is served (a
    first upload) or when it is already the served one (renditions added to it)."""
    return video_is_processing(video, stamp) and video.active_stamp in (None, int(stamp))


def _video_transcoding_progress(progress: TranscodingProgress) -> bool:
    """True if this call served more renditions (a report may come twice, or late: what is
    served only grows)."""
    match = DESTINATION_RE.match(progress.destination or "")
    if not match or match["stamp"] != str(progress.base_name):
        return False
    video_id, stamp = match["video_id"], int(match["stamp"])
    video = Video.objects.filter(id=video_id).first()
    if not _serves_partial(video, stamp):
        return False
    # Storage round trips first, no lock held: never served before every file is stored.
    if _missing_outputs(video, stamp, progress.resolutions):
        return False
    thumbnail_exists = video_storage().exists(video.thumbnail_key(stamp))
    with transaction.atomic():
        video = Video.objects.select_for_update().filter(id=video_id).first()
        if not _serves_partial(video, stamp):
            return False
        served = set(video.resolutions) if video.active_stamp == stamp else set()
        resolutions = served | {int(r) for r in progress.resolutions}
        if resolutions == served:
            return False
        _video_serve(video, stamp, resolutions, thumbnail_exists=thumbnail_exists)
    logger.info("Video %s stamp %s: playable %s.", video_id, stamp, video.resolutions)
    return True


def _release_source(destination: str) -> None:
    try:
        transcoding_release_source(destination=destination)
    except Exception:  # noqa: BLE001 - a leftover temp file is not worth an error
        logger.exception("Could not release the source of %s.", destination)


def storage_location_of(storage) -> str | None:
    """SCALEWAY when new videos live in S3; null for the filesystem or memory storages."""
    return StorageLocation.SCALEWAY if storage_is_s3(storage) else None
