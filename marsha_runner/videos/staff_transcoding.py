"""Staff actions: transcode a ready or errored video again, switch a legacy AWS video to the
runners, transcode the renditions a ladder lacks.

Each action only records an intent and enqueues the launch (``launch.py``, a Celery task):
no byte is copied and no ffprobe runs in the request, and the row lock is held for the few
writes that record the intent. The source is found first, without any lock (a HEAD per
candidate); the row is then locked and re-checked. The launch points the runner jobs at the
existing object (``transcode_source``) when the runners can read it from the video storage
(a kept upload, a rendition, a migrated legacy mp4 under ``aws/``), and copies it into the
video storage (S3 CopyObject when possible) in the task otherwise (a legacy mp4 still in the
AWS bucket). A ready video keeps serving its version meanwhile; if the new one fails it stays
ready, with the failure noted (``transitions.video_error``).
"""

import logging

from django.db import transaction

from marsha_runner.runners.transcoding import transcoding_ladder
from marsha_runner.storage import video_storage

from .constants import LEGACY_SOURCE_MARK, StorageLocation, TranscodePipeline, UploadState
from .launch import video_launch_enqueue
from .media_urls import video_media_storage
from .models import Video
from .transitions import (
    VideoRefused,
    video_error_clear,
    video_next_stamp,
    video_notify_on_commit,
)

logger = logging.getLogger(__name__)

# What each confirmation page says will happen later, and what a failure does.
LATER = (
    "The work runs in the background: this page only looks the source up; it is read, probed "
    "(and copied, for a legacy mp4 in the AWS bucket) by the task when it runs."
)
KEEPS_SERVING = (
    "A ready video keeps serving its version until the new one is ready; if the new one fails, "
    "the video stays ready and serving, with the failure noted on its page."
)


def _video_source_candidates(video: Video, *, upload_stamp: int | None):
    """(key, label) of each object in the video storage a new transcoding may start from,
    best first: the kept upload of ``upload_stamp``, then the highest rendition served. The
    one rule of Re-trigger (the last upload issued) and Transcode missing (the served
    version's own upload, whose ladder its renditions follow)."""
    if upload_stamp:
        yield video.source_key(upload_stamp), "its kept upload"
    stamp = video.active_stamp
    if stamp and video.resolutions and video.transcode_pipeline == TranscodePipeline.PEERTUBE:
        top = max(int(r) for r in video.resolutions)
        yield video.rendition_video_key(stamp, top), f"its {top}p rendition"


def video_legacy_source(video: Video):
    """(storage, key, label) of a legacy AWS video's highest mp4 rendition (AWS bucket, or
    the Scaleway bucket under ``aws/`` once migrated), or None."""
    stamp = video.active_stamp
    if not stamp or not video.resolutions:
        return None
    storage, prefix = video_media_storage(video=video)
    top = max(int(r) for r in video.resolutions)
    return storage, prefix + video.legacy_mp4_key(stamp, top), f"its legacy {top}p mp4"


def _legacy_transcode_source(video: Video, key: str) -> str:
    """The mp4 read where it is once migrated (the video storage, under ``aws/``); marked
    for the launch task to copy while it is in the AWS bucket."""
    migrated = video.storage_location == StorageLocation.SCALEWAY
    return key if migrated else LEGACY_SOURCE_MARK + key


def _found(candidates):
    """The first (key, label) whose object exists in the video storage, or None."""
    storage = video_storage()
    for key, label in candidates:
        if storage.exists(key):
            return key, label
    return None


def _snapshot(video: Video) -> tuple:
    return (video.upload_state, video.processing_stamp, video.uploaded_on)


def _locked_unchanged(video: Video) -> Video:
    """The row locked, as read before the lookup; refused when it moved meanwhile."""
    locked = Video.objects.select_for_update().get(id=video.id)
    if _snapshot(locked) != _snapshot(video):
        raise VideoRefused("it changed while its source was looked up: try again")
    return locked


def _intent(video: Video, *, stamp: int, source: str, launched_stamp) -> None:
    """Record what the launch task will do (under the row lock), enqueue it after commit."""
    video.processing_stamp = stamp
    video.launched_stamp = launched_stamp
    video.transcode_source = source
    video.upload_state = UploadState.PROCESSING
    cleared = video_error_clear(video)
    video.processing_by_staff = True
    video.save(
        update_fields=[
            "processing_stamp", "launched_stamp", "transcode_source", "upload_state",
            *cleared, "processing_by_staff", "updated_on",
        ]
    )  # fmt: skip
    transaction.on_commit(lambda: video_launch_enqueue(video_id=video.id, stamp=stamp, staff=True))
    video_notify_on_commit(video)


def _transcode_again(video: Video, source: str, label: str, *, dry_run: bool) -> str:
    if dry_run:
        return f"will be transcoded again from {label}"
    with transaction.atomic():
        locked = _locked_unchanged(video)
        stamp = video_next_stamp(locked)
        _intent(locked, stamp=stamp, source=source, launched_stamp=locked.launched_stamp)
    logger.info("Video %s: transcoding again from %s (stamp %s).", video.id, label, stamp)
    return f"transcoding again from {label} (enqueued)"


def video_retranscode(*, video_id, dry_run: bool = False) -> str:
    """Re-trigger the transcoding of a ready or errored video of the PEERTUBE pipeline (or
    never transcoded), from its kept upload or its highest rendition. Refuses with a reason."""
    video = Video.objects.get(id=video_id)
    if video.upload_state not in (UploadState.READY, UploadState.ERROR):
        raise VideoRefused(f"it is {video.upload_state}: only a ready or errored video")
    if video.transcode_pipeline == TranscodePipeline.AWS:
        raise VideoRefused("it is a legacy AWS video: switch it to the PEERTUBE pipeline")
    found = _found(_video_source_candidates(video, upload_stamp=video.processing_stamp))
    if found is None:
        raise VideoRefused("no source left: neither its upload nor a rendition is in storage")
    key, label = found
    return _transcode_again(video, key, label, dry_run=dry_run)


def video_switch_to_peertube(*, video_id, dry_run: bool = False) -> str:
    """Transcode a ready legacy AWS video again through the runners, from its highest mp4.

    It keeps serving the legacy version until the new one is ready; then (``_video_ready``)
    its pipeline becomes PEERTUBE and its location the video storage's.
    """
    video = Video.objects.get(id=video_id)
    if video.transcode_pipeline != TranscodePipeline.AWS:
        raise VideoRefused(f"its pipeline is {video.transcode_pipeline or 'none'}, not AWS")
    if video.upload_state != UploadState.READY:
        raise VideoRefused(f"it is {video.upload_state}: only a ready legacy video")
    legacy = video_legacy_source(video)
    if legacy is None or not legacy[0].exists(legacy[1]):
        raise VideoRefused("its highest legacy mp4 rendition is not in storage")
    _storage, key, label = legacy
    return _transcode_again(video, _legacy_transcode_source(video, key), label, dry_run=dry_run)


def video_transcode_missing(*, video_id, dry_run: bool = False) -> str:
    """Jobs for the renditions a ready video's ladder lacks, and only those (PeerTube #6546),
    from its kept upload or its highest rendition. The served version and its renditions
    stay; the new ones join its master playlist, then the video is ready again with every
    resolution. The ladder of a rendition is known from its height; a kept upload's is read
    by the task (``launch.py``), which finds the ladder complete or adds the jobs."""
    video = Video.objects.get(id=video_id)
    stamp = video.active_stamp
    if video.upload_state != UploadState.READY:
        raise VideoRefused(f"it is {video.upload_state}: only a ready video")
    peertube = video.transcode_pipeline == TranscodePipeline.PEERTUBE
    if not peertube or not stamp or not video.resolutions:
        raise VideoRefused("only a ready video transcoded by the PeerTube runners")
    have = sorted({int(r) for r in video.resolutions})
    top = have[-1]
    found = _found(_video_source_candidates(video, upload_stamp=stamp))
    if found is None:
        raise VideoRefused("no source left: neither its upload nor a rendition is in storage")
    key, label = found
    if key == video.source_key(stamp):
        names = "renditions (the task reads its ladder)"
    else:
        ladder = transcoding_ladder(input_resolution=top, input_fps=30)  # heights only
        missing = [r for r, _fps in ladder if r not in have]
        if not missing:
            raise VideoRefused(f"its ladder is complete ({', '.join(f'{r}p' for r in have)})")
        names = ", ".join(f"{r}p" for r in missing)
    if dry_run:
        return f"will get the missing {names}, from {label}"
    with transaction.atomic():
        locked = _locked_unchanged(video)
        # launched_stamp None: the launch task is due for the served stamp (``launch.py``).
        _intent(locked, stamp=stamp, source=key, launched_stamp=None)
    logger.info("Video %s: transcoding the missing renditions from %s.", video.id, label)
    return f"transcoding the missing {names}, from {label} (enqueued)"
