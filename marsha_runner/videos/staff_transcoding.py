"""Staff actions: transcode a ready or errored video again, switch a legacy AWS video to the
runners, transcode the renditions a ladder lacks."""

import logging

from django.db import transaction

from marsha_runner.runners.renditions import transcoding_add_renditions, transcoding_ladder_of
from marsha_runner.runners.transcoding import SourceRefused, SourceUnreadable
from marsha_runner.storage import storage_replace, video_storage

from .constants import TranscodePipeline, UploadState
from .launch import video_launch_enqueue
from .media_urls import video_media_storage
from .models import Video
from .transitions import VideoRefused, video_next_stamp, video_notify_on_commit

logger = logging.getLogger(__name__)


def _video_source_candidates(video: Video):
    """(storage, key, label) of each object a new transcoding may start from, best first:
    the kept upload of the last stamp, then the highest rendition of the served version."""
    storage = video_storage()
    if video.processing_stamp:
        yield storage, video.source_key(video.processing_stamp), "its kept upload"
    stamp = video.active_stamp
    if stamp and video.resolutions and video.transcode_pipeline == TranscodePipeline.PEERTUBE:
        top = max(int(r) for r in video.resolutions)
        yield storage, video.rendition_video_key(stamp, top), f"its {top}p rendition"


def video_legacy_source(video: Video):
    """(storage, key, label) of a legacy AWS video's highest mp4 rendition (AWS bucket, or
    the Scaleway bucket under ``aws/`` once migrated), or None."""
    stamp = video.active_stamp
    if not stamp or not video.resolutions:
        return None
    storage, prefix = video_media_storage(video=video)
    top = max(int(r) for r in video.resolutions)
    return storage, prefix + video.legacy_mp4_key(stamp, top), f"its legacy {top}p mp4"


def _video_source_find(candidates):
    for storage, key, label in candidates:
        if storage.exists(key):
            return storage, key, label
    return None


def _video_transcode_from(video: Video, source, *, dry_run: bool) -> str:
    """Copy ``source`` to a fresh stamp's upload key, set ``processing``, launch after commit.

    The served version (``uploaded_on``, ``urls``) stays until the new one is complete.
    """
    storage, key, label = source
    if dry_run:
        return f"will be transcoded again from {label}"
    stamp = video_next_stamp(video)
    with storage.open(key, "rb") as handle:
        storage_replace(video_storage(), video.source_key(stamp), handle)
    video.processing_stamp = stamp
    video.upload_state = UploadState.PROCESSING
    video.upload_error_reason = ""
    video.save(
        update_fields=["processing_stamp", "upload_state", "upload_error_reason", "updated_on"]
    )
    transaction.on_commit(lambda: video_launch_enqueue(video_id=video.id, stamp=stamp))
    video_notify_on_commit(video)
    logger.info("Video %s: transcoding again from %s (stamp %s).", video.id, label, stamp)
    return f"transcoding again from {label}"


@transaction.atomic
def video_retranscode(*, video_id, dry_run: bool = False) -> str:
    """Re-trigger the transcoding of a ready or errored video of the PEERTUBE pipeline (or
    never transcoded), from its kept upload or its highest rendition. Refuses with a reason."""
    video = Video.objects.select_for_update().get(id=video_id)
    if video.upload_state not in (UploadState.READY, UploadState.ERROR):
        raise VideoRefused(f"it is {video.upload_state}: only a ready or errored video")
    if video.transcode_pipeline == TranscodePipeline.AWS:
        raise VideoRefused("it is a legacy AWS video: switch it to the PEERTUBE pipeline")
    source = _video_source_find(_video_source_candidates(video))
    if source is None:
        raise VideoRefused("no source left: neither its upload nor a rendition is in storage")
    return _video_transcode_from(video, source, dry_run=dry_run)


@transaction.atomic
def video_switch_to_peertube(*, video_id, dry_run: bool = False) -> str:
    """Transcode a ready legacy AWS video again through the runners, from its highest mp4.

    It keeps serving the legacy version until the new one is ready; then (``_video_ready``)
    its pipeline becomes PEERTUBE and its location the video storage's.
    """
    video = Video.objects.select_for_update().get(id=video_id)
    if video.transcode_pipeline != TranscodePipeline.AWS:
        raise VideoRefused(f"its pipeline is {video.transcode_pipeline or 'none'}, not AWS")
    if video.upload_state != UploadState.READY:
        raise VideoRefused(f"it is {video.upload_state}: only a ready legacy video")
    source = _video_source_find([s for s in [video_legacy_source(video)] if s])
    if source is None:
        raise VideoRefused("its highest legacy mp4 rendition is not in storage")
    return _video_transcode_from(video, source, dry_run=dry_run)


@transaction.atomic
def video_transcode_missing(*, video_id, dry_run: bool = False) -> str:
    """Create runner jobs for the renditions a ready video's ladder lacks, and only those
    (PeerTube #6546), from its kept upload or its highest rendition. The served version and
    its renditions stay; the new ones join its master playlist, then the video is ready again
    with every resolution."""
    video = Video.objects.select_for_update().get(id=video_id)
    stamp = video.active_stamp
    if video.upload_state != UploadState.READY:
        raise VideoRefused(f"it is {video.upload_state}: only a ready video")
    peertube = video.transcode_pipeline == TranscodePipeline.PEERTUBE
    if not peertube or not stamp or not video.resolutions:
        raise VideoRefused("only a ready video transcoded by the PeerTube runners")
    storage = video_storage()
    top = max(int(r) for r in video.resolutions)
    source = _video_source_find(
        [
            (storage, video.source_key(stamp), "its kept upload"),
            (storage, video.rendition_video_key(stamp, top), f"its {top}p rendition"),
        ]
    )
    if source is None:
        raise VideoRefused("no source left: neither its upload nor a rendition is in storage")
    _storage, key, label = source
    try:
        ladder = transcoding_ladder_of(key=key)
    except (SourceRefused, SourceUnreadable) as err:
        raise VideoRefused(f"{label} cannot be read: {err}") from err
    have = {int(r) for r in video.resolutions}
    missing = [(r, fps) for r, fps in ladder if r not in have]
    names = ", ".join(f"{r}p" for r, _fps in missing)
    if not missing:
        raise VideoRefused(f"its ladder is complete ({', '.join(f'{r}p' for r in sorted(have))})")
    if dry_run:
        return f"will get {names}, from {label}"
    source_key = video.source_key(stamp)
    if key != source_key:
        with storage.open(key, "rb") as handle:
            storage_replace(storage, source_key, handle)
    transcoding_add_renditions(
        source_key=source_key,
        destination=video.output_prefix(stamp),
        base_name=str(stamp),
        existing={r: video.rendition_video_key(stamp, r) for r in sorted(have)},
        missing=missing,
    )
    video.processing_stamp = stamp
    video.launched_stamp = stamp
    video.upload_state = UploadState.PROCESSING
    video.upload_error_reason = ""
    video.save(
        update_fields=[
            "processing_stamp", "launched_stamp", "upload_state", "upload_error_reason",
            "updated_on",
        ]
    )  # fmt: skip
    video_notify_on_commit(video)
    logger.info("Video %s: transcoding the missing %s.", video.id, names)
    return f"transcoding the missing {names}, from {label}"
