"""Staff operations on runner jobs, runners and registration tokens (the admin's actions).

PeerTube's runner admin semantics: cancel a pending, waiting or processing job and its
descendants; requeue an errored or stalled job; ping runners; delete finished jobs in bulk.
Every function takes keyword arguments, returns a short sentence of what it did (or would do,
with ``dry_run``: everything runs, then rolls back) and raises ``StaffRefused`` (with the
reason) when it does nothing to that object.
"""

import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string
from django_peertube_runner_connector.models import (
    Runner,
    RunnerJob,
    RunnerJobState,
    RunnerJobType,
    RunnerRegistrationToken,
    VideoFile,
)
from django_peertube_runner_connector.models import Video as TranscodedVideo

from marsha_runner.storage import video_storage

from .callbacks import transcoding_ended_notify, transcoding_outcome_reopen
from .observe import runner_job_finished_observe
from .protocol import runner_unregister
from .requeue import runner_job_to_pending
from .selectors import runner_job_video_uuid
from .socket import runners_connected_count, runners_ping
from .tokens import registration_token_generate
from .transcription import CANCELLED, transcription_tell_on_commit
from .watchdog import FINISHED_STATES, runner_job_is_stalled, runner_jobs_prune_batch

logger = logging.getLogger(__name__)

CANCELLABLE_STATES = (
    RunnerJobState.PENDING,
    RunnerJobState.WAITING_FOR_PARENT_JOB,
    RunnerJobState.PROCESSING,
)
PRUNE_BATCH = 1000
REQUEUABLE_STATES = (RunnerJobState.ERRORED, RunnerJobState.PARENT_ERRORED)


class StaffRefused(ValueError):
    """This object was left alone; str(err) says why (shown to staff as "skipped")."""


def _label(state) -> str:
    return RunnerJobState(state).label.lower()


def _descendant_ids(job_ids) -> list:
    """Every job below ``job_ids`` in their trees: one query per level (trees are 2 deep)."""
    found, level = [], list(job_ids)
    while level:
        level = list(
            RunnerJob.objects.filter(dependsOnRunnerJob_id__in=level).values_list("pk", flat=True)
        )
        found += level
    return found


def runner_job_cancel(*, job: RunnerJob, dry_run: bool = False) -> str:
    """Cancel one job and its unfinished descendants (parent cancelled); tell the video app
    (a transcription job's track fails with the reason, so Transcribe is allowed again).

    Refused for a finished job. A runner processing it gets a 404 at its next update.
    """
    with transaction.atomic():
        job = RunnerJob.objects.select_for_update().get(pk=job.pk)
        if job.state not in CANCELLABLE_STATES:
            raise StaffRefused(
                f"it is {_label(job.state)}: only a pending, waiting or processing job "
                "can be cancelled"
            )
        now = timezone.now()
        fields = {"processingJobToken": None, "progress": None, "finishedAt": now}
        RunnerJob.objects.filter(pk=job.pk).update(
            state=RunnerJobState.CANCELLED, updatedAt=now, **fields
        )
        children = (
            RunnerJob.objects.filter(pk__in=_descendant_ids([job.pk]))
            .exclude(state__in=FINISHED_STATES)
            .update(state=RunnerJobState.PARENT_CANCELLED, updatedAt=now, **fields)
        )
        runner_job_finished_observe(job, state=RunnerJobState.CANCELLED)
        if children:
            runner_job_finished_observe(job, state=RunnerJobState.PARENT_CANCELLED, count=children)
        video_uuid = runner_job_video_uuid(job)
        if job.type == RunnerJobType.VIDEO_TRANSCRIPTION:
            transcription_tell_on_commit(runner_job=job, error=CANCELLED)
        elif video_uuid:
            transcoding_ended_notify(video_uuid=video_uuid)
        if dry_run:
            transaction.set_rollback(True)
            return f"will be cancelled, with {children} dependent job(s)"
    logger.info("Runner job %s cancelled by staff (%s descendants).", job.uuid, children)
    return f"cancelled, with {children} dependent job(s)" if children else "cancelled"


def _source_present(job: RunnerJob) -> bool:
    """Whether the upload the job transcodes is still in storage (a transcription reads a
    rendition when the upload is gone: it needs nothing more)."""
    if job.type != RunnerJobType.VOD_HLS_TRANSCODING:
        return True
    source = (
        VideoFile.objects.filter(
            video__uuid=runner_job_video_uuid(job), streamingPlaylist__isnull=True
        )
        .order_by("-resolution")
        .first()
    )
    return bool(source and source.filename and video_storage().exists(source.filename))


def _video_reopen(job: RunnerJob) -> str:
    """The host's video follows the requeued transcoding job back to ``processing``, or the
    requeue is refused with the host's reason (``RUNNERS_TRANSCODING_REOPEN_CALLBACK``)."""
    if job.type != RunnerJobType.VOD_HLS_TRANSCODING:
        return ""
    video = TranscodedVideo.objects.filter(uuid=runner_job_video_uuid(job)).first()
    if video is None:
        return ""
    reopen = import_string(settings.RUNNERS_TRANSCODING_REOPEN_CALLBACK)
    try:
        return reopen(destination=video.directory, base_name=video.baseFilename or "")
    except ValueError as err:
        raise StaffRefused(str(err)) from err


def runner_job_requeue(*, job: RunnerJob, dry_run: bool = False) -> str:
    """An errored or stalled job back to pending (failures reset), runners pinged on commit.

    Its parent-errored descendants wait for it again, and a video errored by it goes back to
    ``processing``. Refused, with the way out, when its source is gone from storage (after
    ``cleanup_sources``' retention) or its video moved on: Re-trigger on the video then. A
    transcription job reopens its subtitle track instead (pending again).
    """
    if not _source_present(job):
        raise StaffRefused(
            "its source is gone from storage: use Re-trigger on the video (it starts from "
            "its kept upload or its highest rendition)"
        )
    with transaction.atomic():
        job = RunnerJob.objects.select_for_update().get(pk=job.pk)
        stalled = runner_job_is_stalled(job)
        if job.state not in REQUEUABLE_STATES and not stalled:
            raise StaffRefused(
                f"it is {_label(job.state)}: only an errored or stalled job can be requeued"
            )
        if job.state == RunnerJobState.PARENT_ERRORED:
            raise StaffRefused("its parent errored: requeue the parent job")
        reopened = _video_reopen(job)
        runner_job_to_pending(job=job, failures=0)
        now = timezone.now()
        waiting = (
            RunnerJob.objects.filter(pk__in=_descendant_ids([job.pk]))
            .filter(state__in=(RunnerJobState.PARENT_ERRORED, RunnerJobState.ERRORED))
            .update(
                state=RunnerJobState.WAITING_FOR_PARENT_JOB,
                failures=0,
                error=None,
                finishedAt=None,
                updatedAt=now,
            )
        )
        if job.type == RunnerJobType.VIDEO_TRANSCRIPTION:
            transcription_tell_on_commit(runner_job=job, error=None, reopened=True)
        else:
            transcoding_outcome_reopen(video_uuid=runner_job_video_uuid(job))
        what = "stalled" if stalled else "errored"
        if dry_run:
            transaction.set_rollback(True)
            also = f"; {reopened.replace('is back', 'goes back')}" if reopened else ""
            return f"will be requeued ({what}), with {waiting} dependent job(s){also}"
    logger.info("Runner job %s requeued by staff.", job.uuid)
    also = f"; {reopened}" if reopened else ""
    return f"requeued ({what}), {waiting} dependent job(s) waiting for it; runners pinged{also}"


def runner_jobs_ping() -> str:
    """Tell every connected runner to ask for jobs now; says how many were connected."""
    connected = runners_connected_count()
    runners_ping()
    if connected is None:
        return "the connected runners pinged (their number is unknown: Redis did not answer)"
    return f"{connected} connected runner(s) pinged"


def runner_jobs_finished(jobs):
    return jobs.filter(state__in=FINISHED_STATES)


def runner_jobs_unfinished(jobs):
    return jobs.exclude(state__in=FINISHED_STATES)


def runner_jobs_delete_finished(*, jobs, keep) -> tuple[int, int, int]:
    """Delete the finished jobs among the queryset ``jobs`` by the rule of
    ``prune_runner_jobs`` (``runner_jobs_prune_batch``): the jobs of a transcoding whose
    destination is in ``keep(destinations)`` (a video's served or latest version) and the
    trees still holding an active job stay. (deleted, unfinished, kept finished).

    Works on a selection of any size without loading it: batches of primary keys.
    """
    unfinished = runner_jobs_unfinished(jobs).count()
    finished = runner_jobs_finished(jobs).count()
    deleted, after_pk = 0, None
    while True:
        count, after_pk = runner_jobs_prune_batch(
            among=jobs, after_pk=after_pk, batch_size=PRUNE_BATCH, keep=keep
        )
        deleted += count
        if after_pk is None:
            break
    kept = finished - deleted
    logger.info(
        "Staff deleted %s finished runner jobs (%s unfinished, %s kept).",
        deleted,
        unfinished,
        kept,
    )
    return deleted, unfinished, kept


# --- Runners and registration tokens ----------------------------------------------------------


def registration_token_create() -> RunnerRegistrationToken:
    """A fresh registration token, for one more fleet of runners."""
    token = RunnerRegistrationToken(registrationToken=registration_token_generate())
    token.full_clean()
    token.save()
    return token


def registration_token_runners(*, token: RunnerRegistrationToken):
    return Runner.objects.filter(runnerRegistrationToken=token)


def runner_unregister_staff(*, runner: Runner, dry_run: bool = False) -> str:
    """Unregister one runner (the protocol's ``runner_unregister``: its processing jobs go
    back to pending); says how many jobs that frees."""
    processing = RunnerJob.objects.filter(runner=runner, state=RunnerJobState.PROCESSING).count()
    if dry_run:
        return f"will be unregistered; its {processing} processing job(s) go back to pending"
    runner_unregister(runner=runner)
    return f"unregistered; its {processing} processing job(s) went back to pending"


def registration_token_revoke(*, token: RunnerRegistrationToken, dry_run: bool = False) -> str:
    """Delete a registration token after unregistering every runner registered with it (the
    library's cascade would otherwise delete them without freeing their jobs).

    One transaction, the token row locked before its runners are listed: a runner registering
    meanwhile waits for the lock (its row references the token), then finds the token gone;
    none is listed too early and deleted by the cascade with its jobs left processing.
    """
    with transaction.atomic():
        locked = RunnerRegistrationToken.objects.select_for_update().filter(pk=token.pk)
        if locked.first() is None:
            raise StaffRefused("it was revoked meanwhile")
        runners = list(registration_token_runners(token=token).order_by("name"))
        names = ", ".join(r.name for r in runners) or "none"
        if dry_run:
            return f"will be revoked, unregistering {len(runners)} runner(s): {names}"
        for runner in runners:
            runner_unregister_staff(runner=runner)
        RunnerRegistrationToken.objects.filter(pk=token.pk).delete()
    logger.info("Registration token %s revoked by staff (%s runners).", token.pk, len(runners))
    return f"revoked, {len(runners)} runner(s) unregistered: {names}"
