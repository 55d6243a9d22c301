"""Transcription through the runners: start it for ready videos, store what comes back once.

``video_transcribe`` is what the admin's Transcribe action and ``manage.py transcribe`` call;
``video_transcription_ended`` is the runners app's callback
(``settings.RUNNERS_TRANSCRIPTION_ENDED_CALLBACK``): the track of the job becomes ready or
error with the reason (a runner's result, its error at the max failures, a stalled job at the
max failures, a staff cancel), or pending again when staff requeue its job. A stalled
transcription job is the watchdog's like any other job, and the watchdog and the job pruning
apply the outcome a pending track never got (``subtitle_tracks_conclude``).
"""

import logging

from django.db import transaction

from marsha_runner.runners.transcription import (
    TranscriptionBusy,
    TranscriptionOutcome,
    transcription_job_outcome,
    transcription_start,
)
from marsha_runner.storage import storage_replace, video_storage
from marsha_runner.videos.constants import SubtitleState, TranscodePipeline, UploadState
from marsha_runner.videos.media_urls import video_refresh_urls
from marsha_runner.videos.models import SubtitleTrack, Video
from marsha_runner.videos.staff_transcoding import video_legacy_source

from .report import Report

logger = logging.getLogger(__name__)


class TranscriptionRefused(ValueError):
    """This video cannot be transcribed now; ``reason`` says why (shown to staff)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# Legacy AWS videos too: from their highest mp4 (AWS bucket, or the Scaleway one once migrated).
TRANSCRIBABLE_PIPELINES = (TranscodePipeline.PEERTUBE, TranscodePipeline.AWS)


def _legacy_source_prepare(video: Video, *, dry_run: bool = False) -> str | None:
    """A legacy video's highest mp4 copied to its served stamp's upload key in the video
    storage (once), where the runner downloads it; None for a PeerTube video. Done before
    any row lock (a whole file's copy); a dry run only checks the mp4 is there."""
    if video.transcode_pipeline != TranscodePipeline.AWS:
        return None
    found = video_legacy_source(video)
    if found is None or not found[0].exists(found[1]):
        raise TranscriptionRefused("Its highest legacy mp4 is not in storage.")
    storage, key, _label = found
    target, videos = video.source_key(video.active_stamp), video_storage()
    if not dry_run and not videos.exists(target):
        with storage.open(key, "rb") as handle:
            storage_replace(videos, target, handle)
    return target


def _refusal(video: Video) -> str | None:
    """Why ``video`` cannot be transcribed now, or None."""
    if video.upload_state != UploadState.READY:
        return f"The video is {video.upload_state}, not ready."
    if video.transcode_pipeline not in TRANSCRIBABLE_PIPELINES or video.active_stamp is None:
        return "Only a video transcoded by the PeerTube runners or AWS can be transcribed."
    tracks = [t for t in video.subtitle_tracks.all() if t.stamp == video.active_stamp]
    if any(t.state == SubtitleState.READY for t in tracks):
        return "The video already has a transcript."
    if any(t.state == SubtitleState.PENDING for t in tracks):
        return "A transcription of this video is already running."
    return None


def video_transcribe(*, video: Video, dry_run: bool = False) -> SubtitleTrack:
    """Start the transcription of the served version: a pending track and its runner job,
    together (runners pinged on commit). Raises ``TranscriptionRefused`` with the reason.

    A legacy AWS video is transcribed from its highest mp4 (before and after migration).
    ``dry_run`` (a confirmation page, called in a transaction rolled back): a legacy video's
    mp4 is looked for, not copied, and its track is returned unsaved."""
    reason = _refusal(video)
    if reason:
        raise TranscriptionRefused(reason)
    source_key = _legacy_source_prepare(video, dry_run=dry_run)
    if dry_run and source_key:
        return SubtitleTrack(video=video, stamp=video.active_stamp)
    with transaction.atomic():
        video = Video.objects.select_for_update().get(pk=video.pk)
        reason = _refusal(video)
        if reason:
            raise TranscriptionRefused(reason)
        stamp = video.active_stamp
        try:
            job_uuid = transcription_start(
                destination=video.output_prefix(stamp), base_name=str(stamp), source_key=source_key
            )
        except TranscriptionBusy as err:
            raise TranscriptionRefused(str(err)) from err
        except LookupError as err:
            raise TranscriptionRefused("The video's renditions are not in storage.") from err
        track = SubtitleTrack.objects.create(video=video, stamp=stamp, job_uuid=job_uuid)
        # On commit: a confirmation page's dry run rolls back, and starts nothing.
        transaction.on_commit(
            lambda: logger.info(
                "Video %s stamp %s: transcription job %s started.", video.id, stamp, job_uuid
            )
        )
    return track


def videos_to_transcribe(*, limit: int | None = None):
    """Ready videos whose served version has no transcript nor one running."""
    videos = (
        Video.objects.filter(
            upload_state=UploadState.READY,
            transcode_pipeline__in=TRANSCRIBABLE_PIPELINES,
            uploaded_on__isnull=False,
        )
        .prefetch_related("subtitle_tracks")
        .order_by("created_on")
    )
    found = 0
    for video in videos.iterator(chunk_size=200):
        if _refusal(video) is None:
            yield video
            found += 1
            if limit is not None and found >= limit:
                return


def videos_transcribe(
    *, video_ids=(), limit: int | None = None, all_videos: bool = False, dry_run: bool = False
) -> Report:
    """``manage.py transcribe``: the named videos (refusals reported, a human should look),
    or every/``limit`` videos without a transcript."""
    report = Report(command="transcribe", dry_run=dry_run)
    if video_ids:
        videos = list(Video.objects.filter(id__in=video_ids).prefetch_related("subtitle_tracks"))
        missing = {str(v) for v in video_ids} - {str(v.id) for v in videos}
        for video_id in sorted(missing):
            report.add("refused", {"video": video_id, "reason": "No such video."})
    else:
        videos = videos_to_transcribe(limit=None if all_videos else limit)
    for video in videos:
        if dry_run:
            reason = _refusal(video)
            if reason:
                report.add("refused", {"video": str(video.id), "reason": reason})
            else:
                report.add("started", {"video": str(video.id)})
            continue
        try:
            track = video_transcribe(video=video)
        except TranscriptionRefused as err:
            report.add("refused", {"video": str(video.id), "reason": err.reason})
            continue
        report.add("started", {"video": str(video.id), "job": str(track.job_uuid)})
    if report.counts.get("refused") and video_ids:
        report.needs_attention.append(f"{report.counts['refused']} video(s) refused")
    return report


def video_transcription_ended(*, outcome: TranscriptionOutcome) -> bool:
    """The runners app's callback: the pending track of that job becomes ``ready`` (language,
    key, URL persisted in the video's ``urls``) or ``error`` with the reason. Only the first
    call for a job changes anything; never raises into the runners app."""
    try:
        return _transcription_ended(outcome)
    except Exception:  # noqa: BLE001 - a callback never raises into the library
        logger.exception("Transcription-ended callback failed for job %s.", outcome.job_uuid)
        return False


def _transcription_ended(outcome: TranscriptionOutcome) -> bool:
    # A requeue reopens the failed track of its job; an outcome concludes the pending one.
    waiting = SubtitleState.ERROR if outcome.reopened else SubtitleState.PENDING
    with transaction.atomic():
        track = (
            SubtitleTrack.objects.select_for_update()
            .select_related("video")
            .filter(job_uuid=outcome.job_uuid, state=waiting)
            .first()
        )
        if track is None:
            logger.info("Transcription job %s ended again or unknown: ignored.", outcome.job_uuid)
            return False
        if outcome.reopened:
            track.state = SubtitleState.PENDING
            track.error_reason = ""
        elif outcome.succeeded and outcome.language and outcome.vtt_key:
            track.state = SubtitleState.READY
            track.language = outcome.language
            track.key = outcome.vtt_key
            track.error_reason = ""
        else:
            track.state = SubtitleState.ERROR
            track.error_reason = (outcome.error or "The transcription failed.")[:2000]
        track.save()
        video = Video.objects.select_for_update().get(pk=track.video_id)
        if track.state == SubtitleState.READY and track.stamp == video.active_stamp:
            video_refresh_urls(video=video)  # urls.subtitles from the ready tracks
    logger.info(
        "Transcription job %s of video %s: %s %s.",
        outcome.job_uuid,
        track.video_id,
        track.state,
        track.language or track.error_reason,
    )
    return True


def subtitle_tracks_conclude(*, report: Report, batch_size: int, dry_run: bool) -> None:
    """Pending tracks whose job is over (its outcome was lost: a process killed after the
    job's commit) or gone (deleted, pruned): the outcome read from the job row is applied,
    so no track waits forever and Transcribe is allowed again after a failure."""
    pending = SubtitleTrack.objects.filter(state=SubtitleState.PENDING).order_by("created_on")
    for track in pending[:batch_size]:
        outcome = transcription_job_outcome(job_uuid=track.job_uuid)
        if outcome is None:
            continue  # its job still runs
        item = {"video": str(track.video_id), "job": str(track.job_uuid)}
        if dry_run or _transcription_ended(outcome):
            state = SubtitleState.READY if outcome.succeeded else SubtitleState.ERROR
            report.add("subtitle_tracks_concluded", {**item, "state": state})
