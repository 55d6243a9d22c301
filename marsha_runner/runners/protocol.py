"""PeerTube's runner protocol as services: one function per runner call.

Each service takes the call's body values as keyword arguments, checks them the way PeerTube's
validators do (``server/core/middlewares/validators/runners``, docs/design.md#runner-protocol),
locks what it changes, and raises ``RunnerRefusal`` with PeerTube's status and code, in
PeerTube's order (formats, then who and which job, then the call's own fields). A refusal
changes nothing: every check runs before the first write, inside the transaction that then
writes.

- format errors (a malformed job uuid, a missing/empty/oversized token or field) → 400;
- unknown job, unknown job token, another runner's job → 404: a runner is never told that
  someone else's job exists;
- a job in the wrong state → 400 (accept: code ``runner_job_not_in_pending_state``, the quiet
  race of peertube-runner), except update → 404, as PeerTube answers.

Tokens are never logged.
"""

import logging
import time
import uuid as uuid_lib
from contextlib import contextmanager
from datetime import timedelta
from functools import partial
from urllib.parse import urlparse

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_peertube_runner_connector.models import (
    Runner,
    RunnerJob,
    RunnerJobState,
    RunnerJobType,
    RunnerRegistrationToken,
    VideoFile,
)

from marsha_runner.storage import storage_serves, video_storage
from marsha_runner.storage.outages import Unreachable, is_outage, storage_reachable

from .deferred import completion_defer, completion_retry_soon
from .failures import runner_job_failure_keep, runner_job_failure_record
from .fields import (
    DESCRIPTION_MAX,
    MESSAGE_MAX,
    NAME_MAX,
    NOT_PENDING,
    NOT_PROCESSING,
    REASON_MAX,
    TOKEN_MAX,
    refusal_invalid,
    refusal_unknown_job,
    runner_job_progress_clean,
    runner_text_clean,
    runner_uuid_clean,
    runner_version_valid,
)
from .job_handlers import runner_job_handler
from .observe import runner_job_failure_observe
from .problems import RunnerRefusal
from .reservations import reservations_asked_since, reservations_free_exist
from .results import runner_job_result_check
from .selectors import runner_job_video_uuid
from .socket import runner_ping_soon
from .tokens import runner_token_generate

logger = logging.getLogger(__name__)

IP_MAX = 255  # the library's Runner.ip (X-Forwarded-For can be longer)
LAST_CONTACT_EVERY = timedelta(minutes=5)
REPING_LOOKS_AT = 100  # pending jobs looked at before pinging a runner again


# --- runners ----------------------------------------------------------------------------------


def runner_by_token(*, runner_token) -> Runner:
    """The runner of ``runner_token``: 400 when missing/empty, 404 ``unknown_runner_token``."""
    runner_token = runner_text_clean(runner_token, name="runnerToken", max_length=TOKEN_MAX)
    runner = Runner.objects.filter(runnerToken=runner_token).first()
    if runner is None:
        raise RunnerRefusal(404, "unknown_runner_token", "Unknown runner token.")
    return runner


def runner_contact(*, runner: Runner, ip: str | None) -> None:
    """Record the runner's last contact at most every ``LAST_CONTACT_EVERY``, as PeerTube and
    the library do, by a conditional UPDATE: a fleet asking every second does not write its
    rows every second, and a contact another process just wrote is not overwritten."""
    now = timezone.now()
    cutoff = now - LAST_CONTACT_EVERY
    if not ip or runner.lastContact >= cutoff:
        return
    ip = ip[:IP_MAX]
    Runner.objects.filter(pk=runner.pk, lastContact__lt=cutoff).update(
        lastContact=now, ip=ip, updatedAt=now
    )
    runner.lastContact, runner.ip = now, ip


def runner_register(
    *, registration_token, name, description=None, version=None, ip: str | None = None
) -> Runner:
    """A new runner with a fresh token; 404 for an unknown registration token, 400 for a bad
    field or a name already taken."""
    registration_token = runner_text_clean(
        registration_token, name="registrationToken", max_length=TOKEN_MAX
    )
    name = runner_text_clean(name, name="name", max_length=NAME_MAX)
    description = runner_text_clean(
        description, name="description", max_length=DESCRIPTION_MAX, required=False
    )
    if version is not None and not runner_version_valid(version):
        raise refusal_invalid("version is not a valid runner version.")
    token_row = RunnerRegistrationToken.objects.filter(
        registrationToken=registration_token
    ).first()
    if token_row is None:
        raise RunnerRefusal(404, "invalid_registration_token", "Registration token is invalid.")
    if Runner.objects.filter(name=name).exists():
        raise RunnerRefusal(400, "runner_name_taken", "A runner with this name exists.")
    try:
        with transaction.atomic():
            runner = Runner.objects.create(
                name=name,
                description=description,
                runnerToken=runner_token_generate(),
                ip=ip or "",
                lastContact=timezone.now(),
                runnerRegistrationToken=token_row,
            )
    except IntegrityError as err:  # the same name registered at the same instant
        raise RunnerRefusal(400, "runner_name_taken", "A runner with this name exists.") from err
    logger.info("Runner %s registered.", name)
    return runner


def runner_unregister(*, runner: Runner) -> None:
    """Delete the runner; the jobs it was processing go back to pending for another runner
    (not counted as failures: the runner left, the job did not fail)."""
    with transaction.atomic():
        runner = Runner.objects.select_for_update().filter(pk=runner.pk).first()
        if runner is None:
            return
        jobs = RunnerJob.objects.select_for_update().filter(
            runner=runner, state=RunnerJobState.PROCESSING
        )
        for job in jobs:
            runner_job_handler(job).abort(runner_job=job)
        runner.delete()
    logger.info("Runner %s unregistered.", runner.name)


# --- jobs -------------------------------------------------------------------------------------


def _job_of_runner(
    *, runner_token, job_uuid, job_token, lock: bool, not_processing_status: int = 400
) -> tuple[Runner, RunnerJob]:
    """The job ``job_uuid`` processed by this runner under ``job_token`` (PeerTube's
    jobOfRunnerGetValidatorFactory): 400 on format, 404 unless all three match, then 400
    (update: 404) unless it is processing."""
    job_uuid = runner_uuid_clean(job_uuid)
    runner_token = runner_text_clean(runner_token, name="runnerToken", max_length=TOKEN_MAX)
    job_token = runner_text_clean(job_token, name="jobToken", max_length=TOKEN_MAX)
    runner = runner_by_token(runner_token=runner_token)
    jobs = RunnerJob.objects.select_for_update() if lock else RunnerJob.objects
    job = jobs.filter(uuid=job_uuid, processingJobToken=job_token, runner=runner).first()
    if job is None:
        raise refusal_unknown_job()
    if job.state != RunnerJobState.PROCESSING:
        if not_processing_status == 404:
            raise refusal_unknown_job()
        raise RunnerRefusal(400, NOT_PROCESSING, 'Job is not in "processing" state.')
    return runner, job


def runner_job_accept(*, runner_token, job_uuid, ip: str | None = None) -> RunnerJob:
    """Give a pending job to this runner with a fresh job token.

    Either way, while jobs wait the runner is pinged again, alone, a moment later (issue 18):
    peertube-runner checks again 2.5 s after an accept, and after a refused one only on the
    next ping, so without it a free slot idles while jobs wait.
    """
    runner = runner_by_token(runner_token=runner_token)
    job_uuid = runner_uuid_clean(job_uuid)
    with transaction.atomic():
        job = RunnerJob.objects.select_for_update().filter(uuid=job_uuid).first()
        if job is None:
            raise refusal_unknown_job()
        if job.state != RunnerJobState.PENDING:
            _runner_ping_if_jobs_wait(runner)
            raise RunnerRefusal(400, NOT_PENDING, "This job is not in pending state anymore.")
        job.state = RunnerJobState.PROCESSING
        job.processingJobToken = f"ptrjt-{uuid_lib.uuid4()}"
        job.startedAt = timezone.now()
        job.runner = runner
        job.save()
        transaction.on_commit(lambda: _runner_ping_if_jobs_wait(runner))
    runner_contact(runner=runner, ip=ip)
    logger.info("Runner %s accepted job %s (%s).", runner.name, job.uuid, job.type)
    return job


def _runner_ping_if_jobs_wait(runner: Runner) -> None:
    """Ping this runner again, soon, while a pending job is held by no other runner (one held
    by another would only start a race it loses)."""
    if settings.RUNNERS_DISPATCH_SPREAD:
        needed = partial(_free_job_waits, runner.runnerToken, time.monotonic())
        runner_ping_soon(runner_id=runner.pk, needed=needed)


def _free_job_waits(runner_token: str, since: float) -> bool:
    if reservations_asked_since(token=runner_token, since=since):
        return False  # it heard: the ping it got was not dropped
    pending = RunnerJob.objects.filter(state=RunnerJobState.PENDING).order_by()
    uuids = list(pending.values_list("uuid", flat=True)[:REPING_LOOKS_AT])
    return bool(uuids) and reservations_free_exist(job_uuids=uuids, token=runner_token)


@contextmanager
def _job_call(*, runner_token, job_uuid, job_token, ip, not_processing_status: int = 400):
    """A call on a processing job of this runner (update, error, abort): the job is found and
    locked, the body runs in the same transaction, then the runner's contact is recorded; a
    refusal raised by the body changes nothing and records no contact."""
    with transaction.atomic():
        runner, job = _job_of_runner(
            runner_token=runner_token,
            job_uuid=job_uuid,
            job_token=job_token,
            lock=True,
            not_processing_status=not_processing_status,
        )
        yield runner, job
    runner_contact(runner=runner, ip=ip)


def runner_job_update(
    *, runner_token, job_uuid, job_token, progress=None, ip: str | None = None
) -> RunnerJob:
    """Record the progress of a processing job; 404 when it is not processing."""
    call = {"runner_token": runner_token, "job_uuid": job_uuid, "job_token": job_token}
    with _job_call(**call, ip=ip, not_processing_status=404) as (_runner, job):
        progress = runner_job_progress_clean(progress)
        runner_job_handler(job).update(runner_job=job, progress=progress)
    return job


def runner_job_fail(
    *, runner_token, job_uuid, job_token, message, ip: str | None = None
) -> RunnerJob:
    """The runner failed the job: counted, back to pending until the max failures."""
    call = {"runner_token": runner_token, "job_uuid": job_uuid, "job_token": job_token}
    with _job_call(**call, ip=ip) as (runner, job):
        message = runner_text_clean(message, name="message", max_length=MESSAGE_MAX)
        logger.warning("Runner %s failed job %s: %s", runner.name, job.uuid, message[:500])
        # A runner that could not download its source while our storage is down did not
        # fail: the job goes back to pending without a failure counted.
        counted = storage_reachable(video_storage())
        runner_job_failure_record(job=job, message=message, counted=counted)
    return job


def runner_job_abort(
    *, runner_token, job_uuid, job_token, reason, ip: str | None = None
) -> RunnerJob:
    """The runner gave the job up: counted, back to pending until the max failures."""
    call = {"runner_token": runner_token, "job_uuid": job_uuid, "job_token": job_token}
    with _job_call(**call, ip=ip) as (runner, job):
        reason = runner_text_clean(reason, name="reason", max_length=REASON_MAX)
        job.failures += 1
        runner_job_failure_observe(job, reason="abort")
        logger.info("Runner %s aborted job %s: %s", runner.name, job.uuid, reason[:500])
        runner_job_failure_keep(job=job, message=f"aborted: {reason}")
        runner_job_handler(job).abort(runner_job=job)
    return job


def _success_payload(job: RunnerJob, files: dict) -> dict:
    """The handler's result payload from the multipart fields; 400 when a file is missing."""
    if "transcription" in job.type:
        result = {
            "inputLanguage": files.get("payload[inputLanguage]"),
            "vttFile": files.get("payload[vttFile]"),
        }
        if not isinstance(result["vttFile"], UploadedFile):
            raise refusal_invalid("payload vttFile must be an uploaded file.")
        return result
    result = {
        "video_file": files.get("payload[videoFile]"),
        "resolution_playlist_file": files.get("payload[resolutionPlaylistFile]"),
    }
    needed = ["video_file"]
    if job.type == RunnerJobType.VOD_HLS_TRANSCODING:
        needed.append("resolution_playlist_file")
    for name in needed:
        if not isinstance(result[name], UploadedFile):
            raise refusal_invalid(f"payload {name} must be an uploaded file.")
    return result


def runner_job_succeed(
    *, runner_token, job_uuid, job_token, files: dict, ip: str | None = None
) -> RunnerJob:
    """Store the job's result. The payload is checked first (the files are what the job asked
    for: ``results.py``), without any lock and before anything is stored; then the job
    row is locked, re-checked and moved to completing in a short transaction, so the storage
    writes of the completion hold no lock and a second success finds it not processing."""
    runner, job = _job_of_runner(
        runner_token=runner_token, job_uuid=job_uuid, job_token=job_token, lock=False
    )
    result = _success_payload(job, files)
    runner_job_result_check(job=job, result=result)
    with transaction.atomic():
        runner, job = _job_of_runner(
            runner_token=runner_token, job_uuid=job_uuid, job_token=job_token, lock=True
        )
        job.state = RunnerJobState.COMPLETING
        job.save(update_fields=["state", "updatedAt"])
    try:
        runner_job_handler(job).complete(runner_job=job, result_payload=result)
    except Exception as err:
        if not is_outage(err):
            raise
        # The runner's work is taken (204): kept until storage answers, never lost or counted.
        completion_defer(job=job, result=result, error=err)
        completion_retry_soon(job_uuid=job.uuid)
        return job
    runner_contact(runner=runner, ip=ip)
    logger.info("Runner %s finished job %s.", runner.name, job.uuid)
    return job


def runner_job_source(*, runner_token, job_uuid, job_token, video_uuid) -> str:
    """The URL of the source a processing job transcodes (absolute when the job knows its
    domain); 404 when the video is not the job's or the source is gone."""

    job_uuid = runner_uuid_clean(job_uuid)
    video_uuid = runner_uuid_clean(video_uuid, name="video uuid")
    runner, job = _job_of_runner(
        runner_token=runner_token, job_uuid=job_uuid, job_token=job_token, lock=False
    )
    if runner_job_video_uuid(job) != video_uuid:
        raise refusal_unknown_job()
    files = VideoFile.objects.filter(video__uuid=video_uuid).order_by("-resolution")
    source = files.filter(streamingPlaylist__isnull=True).first()
    if source is None and job.type == RunnerJobType.VIDEO_TRANSCRIPTION:
        source = files.first()  # the upload is gone: a rendition has the same audio
    if source is None or not source.filename:
        raise RunnerRefusal(404, "video_file_not_found", "The source file is gone.")
    # A GET of its first byte, not a HEAD: a storage coming back lists objects before it
    # serves them. Unreachable, or listed but not served: 503 with Retry-After
    # (views.runner_call), so the runner waits instead of failing a download it would count
    # as its own failure.
    if not storage_serves(video_storage(), source.filename):
        if video_storage().exists(source.filename):
            raise Unreachable("the storage lists the source but does not serve it")
        raise RunnerRefusal(404, "video_file_not_found", "The source file is gone.")
    url = video_storage().url(source.filename)
    if not urlparse(url).scheme and job.domain:
        url = job.domain.rstrip("/") + url
    logger.info("Runner %s downloads the source of %s.", runner.name, video_uuid)
    return url
