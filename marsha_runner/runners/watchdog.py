"""Job-level repairs the library never makes: stalled, orphaned and stranded jobs.

Why: docs/design.md#dead-runners.

``marsha_runner.operations`` decides when to run them (cron); each one locks its row, checks the
condition again and does nothing when another process got there first, so two watchdogs at once
or a runner answering late change nothing twice. Runners are pinged on commit by the handlers.
"""

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_peertube_runner_connector.models import RunnerJob, RunnerJobState

from .deferred import completions_deferred
from .failures import runner_job_failure_record
from .handlers import FAILED_STATES
from .job_handlers import runner_job_handler
from .requeue import runner_job_to_pending
from .selectors import (
    runner_jobs_active_of_videos,
    transcoded_video_directories,
)

logger = logging.getLogger(__name__)

REQUEUED = "requeued"
ERRORED = "errored"
# Children of such a parent can never run.
DEAD_PARENT_STATES = (
    *FAILED_STATES,
    RunnerJobState.CANCELLED,
    RunnerJobState.PARENT_CANCELLED,
)
STRANDED_STATES = (RunnerJobState.PENDING, RunnerJobState.WAITING_FOR_PARENT_JOB)
# Finished for good: what prune may delete.
FINISHED_STATES = (
    RunnerJobState.COMPLETED,
    RunnerJobState.ERRORED,
    RunnerJobState.CANCELLED,
    RunnerJobState.PARENT_ERRORED,
    RunnerJobState.PARENT_CANCELLED,
)


@dataclass(frozen=True)
class JobRef:
    """A job as the watchdog reports it (no tokens)."""

    uuid: str
    type: str
    failures: int
    destination: str | None

    def as_dict(self) -> dict:
        return {
            "uuid": self.uuid,
            "type": self.type,
            "failures": self.failures,
            "destination": self.destination,
        }


def _refs(jobs) -> list[JobRef]:
    jobs = list(jobs.values("uuid", "type", "failures", "privatePayload"))
    directories = transcoded_video_directories(
        video_uuids={(j["privatePayload"] or {}).get("videoUUID") for j in jobs}
    )
    return [
        JobRef(
            uuid=str(j["uuid"]),
            type=j["type"],
            failures=j["failures"],
            destination=directories.get((j["privatePayload"] or {}).get("videoUUID")),
        )
        for j in jobs
    ]


# A job left completing by a process killed during its completion is as stalled as one whose
# runner died: nobody will move it, and its runner was told its result was taken.
STALLED_STATES = (RunnerJobState.PROCESSING, RunnerJobState.COMPLETING)


def runner_job_stalled_before(*, now=None):
    """Jobs not updated since this moment are stalled (``RUNNERS_STALLED_JOB_TIMEOUT``)."""
    now = now or timezone.now()
    return now - timedelta(seconds=settings.RUNNERS_STALLED_JOB_TIMEOUT)


def runner_job_is_stalled(job: RunnerJob, *, updated_before=None) -> bool:
    """The one rule, for the watchdog and for staff: processing or completing with no change
    since ``updated_before`` (default: the stalled timeout ago), its result not waiting in the
    spool for storage to answer (``deferred.py``)."""
    updated_before = updated_before or runner_job_stalled_before()
    return (
        job.state in STALLED_STATES
        and job.updatedAt < updated_before
        and str(job.uuid) not in completions_deferred()
    )


def runner_jobs_stalled(*, updated_before, limit: int) -> list[JobRef]:
    """Jobs processing (or completing) with no change since ``updated_before``; a job whose
    result waits in the spool for storage to answer is not stalled (``deferred.py``)."""
    jobs = (
        RunnerJob.objects.filter(state__in=STALLED_STATES, updatedAt__lt=updated_before)
        .exclude(uuid__in=completions_deferred())
        .order_by("updatedAt")[:limit]
    )
    return _refs(RunnerJob.objects.filter(pk__in=list(jobs.values_list("pk", flat=True))))


def runner_job_fail_stalled(*, job_uuid: str, updated_before, message: str) -> str | None:
    """One more failure for a stalled job: back to pending, or errored at the max failures.

    The same path as a runner's ``error`` call (``runner_job_failure_record``). None when the
    job moved on meanwhile (its runner answered, another watchdog took it).
    """
    with transaction.atomic():
        job = (
            RunnerJob.objects.select_for_update()
            .filter(uuid=job_uuid, state__in=STALLED_STATES, updatedAt__lt=updated_before)
            .first()
        )
        if job is None:
            return None
        runner_job_failure_record(job=job, message=message, reason="stalled")
        state = RunnerJob.objects.filter(pk=job.pk).values_list("state", flat=True).get()
    outcome = REQUEUED if state == RunnerJobState.PENDING else ERRORED
    logger.warning("Runner job %s stalled: %s (failure %s).", job_uuid, outcome, job.failures)
    return outcome


def runner_job_fail_would(*, failures: int) -> str:
    """What ``runner_job_fail_stalled`` would do to a job with ``failures`` (dry runs)."""
    return ERRORED if failures + 1 >= settings.TRANSCODING_RUNNER_MAX_FAILURE else REQUEUED


def runner_jobs_orphaned(*, limit: int) -> list[JobRef]:
    """Processing jobs whose runner was unregistered (the library sets the runner to null)."""
    jobs = RunnerJob.objects.filter(state=RunnerJobState.PROCESSING, runner__isnull=True)
    return _refs(jobs.order_by("updatedAt")[:limit])


def runner_job_requeue_orphan(*, job_uuid: str) -> bool:
    """Back to pending without a failure (the job did not fail: its runner left); ping."""
    with transaction.atomic():
        job = (
            RunnerJob.objects.select_for_update()
            .filter(uuid=job_uuid, state=RunnerJobState.PROCESSING, runner__isnull=True)
            .first()
        )
        if job is None:
            return False
        runner_job_to_pending(job=job, failures=job.failures)
    logger.warning("Runner job %s lost its runner: requeued.", job_uuid)
    return True


def runner_jobs_stranded(*, limit: int) -> list[JobRef]:
    """Pending or waiting children of a parent that failed or was cancelled for good."""
    jobs = RunnerJob.objects.filter(
        state__in=STRANDED_STATES, dependsOnRunnerJob__state__in=DEAD_PARENT_STATES
    )
    return _refs(jobs.order_by("createdAt")[:limit])


def runner_job_parent_errored(*, job_uuid: str) -> bool:
    """A stranded child → PARENT_ERRORED (its own children too); the host is told."""
    with transaction.atomic():
        job = (
            RunnerJob.objects.select_for_update()
            .filter(
                uuid=job_uuid,
                state__in=STRANDED_STATES,
                dependsOnRunnerJob__state__in=DEAD_PARENT_STATES,
            )
            .first()
        )
        if job is None:
            return False
        runner_job_handler(job).error(runner_job=job, message="Parent error", from_parent=True)
    logger.warning("Runner job %s was left under a failed parent: parent-errored.", job_uuid)
    return True


def runner_jobs_prune_batch(
    *,
    after_pk,
    batch_size: int,
    keep,
    finished_before=None,
    among=None,
    dry_run: bool = False,
) -> tuple:
    """Delete up to ``batch_size`` finished jobs (by pk, after ``after_pk``) older than
    ``finished_before`` and/or among the queryset ``among`` (a staff selection), except those
    of transcodings whose destination is in ``keep(destinations)``; a tree still holding an
    active job is never touched. The one rule of ``prune_runner_jobs`` and the staff's
    "Delete finished jobs".

    Returns (deleted or would-delete count, last pk seen); last pk None when done.
    """
    candidates = (RunnerJob.objects if among is None else among).filter(state__in=FINISHED_STATES)
    if finished_before is not None:
        candidates = candidates.filter(updatedAt__lt=finished_before)
    candidates = candidates.order_by("pk")
    if after_pk is not None:
        candidates = candidates.filter(pk__gt=after_pk)
    rows = list(candidates.values("pk", "privatePayload")[:batch_size])
    if not rows:
        return 0, None
    video_uuids = {(r["privatePayload"] or {}).get("videoUUID") for r in rows} - {None}
    directories = transcoded_video_directories(video_uuids=video_uuids)
    kept = keep(set(directories.values()))
    busy = set(
        runner_jobs_active_of_videos(video_uuids=video_uuids).values_list("video_uuid", flat=True)
    )
    doomed = [
        r["pk"]
        for r in rows
        if (video_uuid := (r["privatePayload"] or {}).get("videoUUID")) not in busy
        and directories.get(video_uuid) not in kept
    ]
    if dry_run or not doomed:
        return len(doomed), rows[-1]["pk"]
    with transaction.atomic():
        deleted, _ = RunnerJob.objects.filter(pk__in=doomed).delete()
    return deleted, rows[-1]["pk"]
