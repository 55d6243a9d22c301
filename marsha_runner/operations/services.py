"""Services of operations: what each cron command does, callable from anywhere.

Every service is idempotent (a second run finds nothing to do), takes ``dry_run`` (say what
would be done, write nothing) and returns a report: plain data a command prints as text or
JSON. ``needs_attention`` in a report means a human should look (the command exits 2).
"""

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from marsha_runner.runners import deferred
from marsha_runner.runners import watchdog as jobs
from marsha_runner.runners.selectors import transcoding_destinations_finished
from marsha_runner.runners.sources import transcoding_source_delete, transcoding_sources_listed
from marsha_runner.storage import storage_dir_prune, storage_listdir, video_storage
from marsha_runner.storage.outages import storage_reachable
from marsha_runner.videos import launch
from marsha_runner.videos.completion import video_transcoding_complete
from marsha_runner.videos.constants import SOURCE_KEY_RE, UploadState
from marsha_runner.videos.models import Video
from marsha_runner.videos.reasons import ErrorCode
from marsha_runner.videos.selectors import video_current_destinations
from marsha_runner.videos.transitions import video_error
from marsha_runner.videos.upload import video_upload_abandon

from . import transcription
from .models import LaunchRecovery
from .report import Report

logger = logging.getLogger(__name__)


# --- runners_watchdog ---------------------------------------------------------------------------


def runners_watchdog(
    *,
    stalled_timeout: int | None = None,
    batch_size: int = 500,
    dry_run: bool = False,
    now=None,
) -> Report:
    """Repair what dead runners, lost launches, outages and the library leave behind, in
    that order:

    0. results kept during a storage or database outage: their completion applied when due;
    1. processing jobs silent for ``stalled_timeout`` s: one more failure (pending, or errored
       at the max failures: its children parent-errored, its video errored with a reason);
    2. processing jobs whose runner was unregistered: back to pending;
    3. pending/waiting children of a failed parent: parent-errored;
    4. processing videos whose jobs are all finished: their completion applied (once);
    5. processing videos without their job tree ``VIDEO_LAUNCH_RECOVERY_DELAY`` s after
       upload-ended: the launch enqueued again, ``error`` after the max attempts;
    6. pending subtitle tracks whose transcription job is over or gone: its outcome applied.
    """
    now = now or timezone.now()
    timeout = settings.RUNNERS_STALLED_JOB_TIMEOUT if stalled_timeout is None else stalled_timeout
    report = Report(command="runners_watchdog", dry_run=dry_run)
    _completions_retry(report=report, dry_run=dry_run)
    updated_before = now - timedelta(seconds=timeout)
    message = f"The runner sent no update for {timeout} s (stalled)."
    for job in jobs.runner_jobs_stalled(updated_before=updated_before, limit=batch_size):
        if dry_run:
            outcome = jobs.runner_job_fail_would(failures=job.failures)
        else:
            outcome = jobs.runner_job_fail_stalled(
                job_uuid=job.uuid, updated_before=updated_before, message=message
            )
        if outcome:
            report.add(f"stalled_jobs_{outcome}", job.as_dict())
            if outcome == jobs.ERRORED:
                report.needs_attention.append(f"runner job {job.uuid} errored for good")

    for job in jobs.runner_jobs_orphaned(limit=batch_size):
        if dry_run or jobs.runner_job_requeue_orphan(job_uuid=job.uuid):
            report.add("orphaned_jobs_requeued", job.as_dict())

    for job in jobs.runner_jobs_stranded(limit=batch_size):
        if dry_run or jobs.runner_job_parent_errored(job_uuid=job.uuid):
            report.add("stranded_jobs_parent_errored", job.as_dict())

    _videos_complete(report=report, batch_size=batch_size, dry_run=dry_run)
    _launches_recover(report=report, now=now, batch_size=batch_size, dry_run=dry_run)
    transcription.subtitle_tracks_conclude(report=report, batch_size=batch_size, dry_run=dry_run)
    return report


def _completions_retry(*, report: Report, dry_run: bool) -> None:
    """Completions deferred by an outage (the runner's result waits in the spool): applied
    now when their next attempt is due; still deferred while storage does not answer."""
    for job_uuid in deferred.completions_deferred():
        outcome = deferred.DEFERRED if dry_run else deferred.completion_retry(job_uuid=job_uuid)
        report.add(f"completions_{outcome}", {"job": job_uuid})


def _videos_complete(*, report: Report, batch_size: int, dry_run: bool) -> None:
    """Processing videos whose job tree is over: apply the completion a lost callback never
    did (the service acts once, whoever calls it)."""
    launched = [
        video
        for video in Video.objects.filter(
            upload_state=UploadState.PROCESSING, launched_stamp__isnull=False
        ).order_by("updated_on")[:batch_size]
        if video.launched_stamp == video.processing_stamp
    ]
    finished = transcoding_destinations_finished(
        destinations={video.output_prefix(video.processing_stamp) for video in launched}
    )
    for video in launched:
        if video.output_prefix(video.processing_stamp) not in finished:
            continue
        if dry_run:
            report.add("completions_applied", {"video": str(video.id), "state": None})
            continue
        if video_transcoding_complete(video=video):
            video.refresh_from_db()
            item = {"video": str(video.id), "state": video.upload_state}
            report.add("completions_applied", item)


def _launches_recover(*, report: Report, now, batch_size: int, dry_run: bool) -> None:
    """Processing videos whose launch never ran: enqueue it again, or give up with a reason.

    A launch the broker refused (``launch_refused_on``: nothing of it is queued) is enqueued
    at once, at the first run after the broker answers again; any other waits
    ``VIDEO_LAUNCH_RECOVERY_DELAY`` (it may still be on its way). A refusal by a broker still
    down is an outage, not an attempt: only enqueues the broker took count toward
    ``VIDEO_LAUNCH_RECOVERY_MAX_ATTEMPTS``.
    """
    delay = timedelta(seconds=settings.VIDEO_LAUNCH_RECOVERY_DELAY)
    max_attempts = settings.VIDEO_LAUNCH_RECOVERY_MAX_ATTEMPTS
    stuck = (
        Video.objects.filter(upload_state=UploadState.PROCESSING, processing_stamp__isnull=False)
        .filter(Q(updated_on__lt=now - delay) | Q(launch_refused_on__isnull=False))
        .exclude(launched_stamp=F("processing_stamp"))
        .order_by("updated_on")
    )
    for video in stuck[:batch_size]:
        stamp = video.processing_stamp
        refused = video.launch_refused_on is not None
        recovery = LaunchRecovery.objects.filter(video=video, stamp=stamp).first()
        attempts = recovery.attempts if recovery else 0
        last = recovery.last_attempt_on if recovery else None
        if not refused and last and last > now - delay:
            continue  # the last enqueue may still be on its way
        item = {"video": str(video.id), "stamp": stamp, "attempts": attempts}
        if attempts >= max_attempts:
            if not storage_reachable(video_storage()):
                report.add("launches_waiting_for_storage", item)  # an outage: never given up
                continue
            detail = f"The transcoding was never launched ({attempts} attempts)."
            if dry_run or video_error(
                video_id=video.id, stamp=stamp, code=ErrorCode.NEVER_LAUNCHED, detail=detail
            ):
                report.add("launches_given_up", item)
                report.needs_attention.append(f"video {video.id} never launched")
            continue
        if dry_run:
            report.add("launches_enqueued", {**item, "attempts": attempts + 1})
            continue
        staff = video.processing_by_staff
        if refused:  # cleared before, not after: an inline (eager) launch may mark it again
            Video.objects.filter(pk=video.pk, processing_stamp=stamp).update(
                launch_refused_on=None
            )
        if not launch.video_launch_enqueue(video_id=video.id, stamp=stamp, staff=staff):
            report.add("launches_refused_by_broker")  # still down: retried at the next run
            continue
        with transaction.atomic():
            recovery, _ = LaunchRecovery.objects.select_for_update().get_or_create(
                video=video, stamp=stamp
            )
            recovery.attempts += 1
            recovery.last_attempt_on = now
            recovery.save()
        logger.warning("Video %s stamp %s was never launched: enqueued again.", video.id, stamp)
        report.add("launches_enqueued", {**item, "attempts": attempts + 1})


# --- health_report ------------------------------------------------------------------------------


@dataclass(frozen=True)
class HealthThresholds:
    """Past these, the health report exits 2 (settings ``HEALTH_*``; options override)."""

    max_pending_jobs: int
    max_oldest_pending_age: int
    max_errored_jobs_24h: int
    min_runners_online: int

    @classmethod
    def from_settings(cls, **overrides) -> "HealthThresholds":
        values = {
            "max_pending_jobs": settings.HEALTH_MAX_PENDING_JOBS,
            "max_oldest_pending_age": settings.HEALTH_MAX_OLDEST_PENDING_AGE,
            "max_errored_jobs_24h": settings.HEALTH_MAX_ERRORED_JOBS_24H,
            "min_runners_online": settings.HEALTH_MIN_RUNNERS_ONLINE,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def health_alerts(*, health, thresholds: HealthThresholds) -> list[str]:
    """The thresholds ``health`` (a ``QueueHealth``) crosses, in words; empty when all is well."""
    alerts = []
    if health.jobs_pending > thresholds.max_pending_jobs:
        alerts.append(
            f"{health.jobs_pending} jobs pending (more than {thresholds.max_pending_jobs})"
        )
    age = health.oldest_pending_age
    if age is not None and age > thresholds.max_oldest_pending_age:
        alerts.append(
            f"the oldest pending job waits for {age:.0f} s "
            f"(more than {thresholds.max_oldest_pending_age} s)"
        )
    if health.jobs_errored_24h > thresholds.max_errored_jobs_24h:
        alerts.append(
            f"{health.jobs_errored_24h} jobs errored in 24 h "
            f"(more than {thresholds.max_errored_jobs_24h})"
        )
    if health.runners_online < thresholds.min_runners_online:
        alerts.append(
            f"{health.runners_online} runners online (fewer than {thresholds.min_runners_online})"
        )
    return alerts


# --- cleanup_sources ----------------------------------------------------------------------------


def _source_stamps(storage, video_id) -> list[int]:
    _dirs, files = storage_listdir(storage, Video(id=video_id).source_dir())
    return sorted(int(name) for name in files if name.isdigit())


def _video_ids(names) -> set[str]:
    ids = set()
    for name in names:
        try:
            ids.add(str(uuid.UUID(name)))
        except ValueError:
            continue
    return ids


def sources_cleanup(*, batch_size: int = 500, dry_run: bool = False, now=None) -> Report:
    """Delete the uploaded sources of videos ``ready`` or ``error`` for ``SOURCES_RETENTION``
    seconds, from storage and from the library's tables together; a source a transcoding
    still reads (an active job) is kept. Finds them in storage (``tmp/<video>/``) and in the
    library's rows, so neither side is left behind."""
    now = now or timezone.now()
    report = Report(command="cleanup_sources", dry_run=dry_run)
    storage = video_storage()
    listed, _files = storage_listdir(storage, "tmp")
    candidates = _video_ids(listed)
    from_rows = {}
    for key in transcoding_sources_listed():
        match = SOURCE_KEY_RE.match(key)
        if match:
            candidates.add(match["video_id"])
            from_rows.setdefault(match["video_id"], set()).add(int(match["stamp"]))
    cutoff = now - timedelta(seconds=settings.SOURCES_RETENTION)
    done = Video.objects.filter(
        id__in=candidates,
        upload_state__in=(UploadState.READY, UploadState.ERROR),
        updated_on__lt=cutoff,
    ).order_by("updated_on")
    for video in done[:batch_size]:
        stamps = set(_source_stamps(storage, video.id)) | from_rows.get(str(video.id), set())
        for stamp in sorted(stamps):
            key = video.source_key(stamp)
            item = {"video": str(video.id), "key": key}
            deleted = transcoding_source_delete(
                destination=video.output_prefix(stamp), source_key=key, dry_run=dry_run
            )
            report.add("sources_deleted" if deleted else "sources_kept_in_use", item)
        if not dry_run:
            storage_dir_prune(storage, video.source_dir())
    return report


# --- purge_stale_uploads ------------------------------------------------------------------------


def stale_uploads_purge(*, batch_size: int = 500, dry_run: bool = False, now=None) -> Report:
    """Uploads issued ``STALE_UPLOAD_AGE`` seconds ago whose upload-ended never came:

    - a video still serving a version goes back to ``ready`` (the stray object is deleted);
    - else, an object at the issued key → ``error`` with the reason (kept for a look;
      cleanup_sources removes it after the retention);
    - else back to a clean ``pending`` with the issued stamp dropped.
    Then temp objects of videos that no longer exist, issued before the same age, are removed.
    """
    now = now or timezone.now()
    report = Report(command="purge_stale_uploads", dry_run=dry_run)
    age = settings.STALE_UPLOAD_AGE
    before = int((now - timedelta(seconds=age)).timestamp())
    storage = video_storage()
    stale = Video.objects.filter(
        upload_state=UploadState.PENDING, processing_stamp__lt=before
    ).order_by("processing_stamp")
    for candidate in stale[:batch_size]:
        outcome = video_upload_abandon(
            video_id=candidate.id, issued_before=before, dry_run=dry_run
        )
        if outcome:
            item = {"video": str(candidate.id), "stamp": candidate.processing_stamp}
            report.add(f"uploads_{outcome}", item)

    listed, _files = storage_listdir(storage, "tmp")
    listed_ids = _video_ids(listed)
    known = Video.objects.filter(id__in=listed_ids).values_list("pk", flat=True)
    orphans = listed_ids - {str(pk) for pk in known}
    for video_id in sorted(orphans)[:batch_size]:
        for stamp in _source_stamps(storage, video_id):
            if stamp >= before:
                continue
            key = Video(id=video_id).source_key(stamp)
            report.add("orphan_objects_deleted", {"key": key})
            if not dry_run:
                storage.delete(key)
        if not dry_run:
            storage_dir_prune(storage, Video(id=video_id).source_dir())
    return report


# --- prune_runner_jobs --------------------------------------------------------------------------


def runner_jobs_prune(*, batch_size: int = 1000, dry_run: bool = False, now=None) -> Report:
    """Delete completed, cancelled and errored runner jobs older than
    ``RUNNER_JOBS_RETENTION_DAYS``, ``batch_size`` rows per transaction, keeping every job
    of a video's current version (served, or being made)."""
    now = now or timezone.now()
    report = Report(command="prune_runner_jobs", dry_run=dry_run)
    # A job about to go takes its outcome with it: apply what a subtitle track still waits for.
    transcription.subtitle_tracks_conclude(report=report, batch_size=batch_size, dry_run=dry_run)
    finished_before = now - timedelta(days=settings.RUNNER_JOBS_RETENTION_DAYS)
    after_pk = None
    while True:
        count, after_pk = jobs.runner_jobs_prune_batch(
            finished_before=finished_before,
            after_pk=after_pk,
            batch_size=batch_size,
            keep=video_current_destinations,
            dry_run=dry_run,
        )
        if after_pk is None:
            break
        report.add("batches")
        if count:
            report.add("jobs_deleted", count=count)
    if not report.counts.get("jobs_deleted"):
        report.counts.pop("batches", None)  # nothing to do: say so
    return report
