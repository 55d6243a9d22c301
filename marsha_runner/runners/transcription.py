"""Transcription jobs (``video-transcription``, whisper on the runner side), hardened.

The library's handler pings runners before the job is committed, completes a job with an
unknown language silently (logs, stores nothing, reports success), never pings on a retry and
calls its host callbacks with its own Video. Ours: ping on commit; a missing or unknown
language or a missing VTT errors the job with a reason; the VTT is written once at its key;
the host (``RUNNERS_TRANSCRIPTION_ENDED_CALLBACK``) is told after commit with a
``TranscriptionOutcome``, on success, on failure for good, on a staff cancel, and when a staff
requeue reopens a failed job (``reopened``). An outcome lost on the way (a process killed
after the commit) is read back from the job row by ``transcription_job_outcome``.
"""

import logging
import os
from dataclasses import dataclass
from functools import partial

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string
from django_peertube_runner_connector.models import (
    RunnerJob,
    RunnerJobState,
    RunnerJobType,
    Video,
    VideoFile,
    VideoState,
    VideoStreamingPlaylist,
)
from django_peertube_runner_connector.utils.job_handlers.transcription_job_handler import (
    TranscriptionJobHandler,
)

from marsha_runner.storage import storage_replace, video_storage
from marsha_runner.storage.outages import Unreachable, outage_describe, storage_outage

from .handlers import HLSTranscodingJobHandler
from .observe import runner_job_finished_observe
from .playlists import master_playlist_write, subtitle_vtt_key
from .priority import JobPriority
from .requeue import runner_job_abort, runner_job_to_pending
from .selectors import ACTIVE_STATES, runner_job_video_uuid, runner_jobs_of_video

logger = logging.getLogger(__name__)


class TranscriptionRejected(ValueError):
    """A runner's transcription result we cannot store; str(err) is the job's error."""


@dataclass(frozen=True)
class TranscriptionOutcome:
    """A finished transcription job, as the host needs it."""

    job_uuid: str
    destination: str
    base_name: str
    succeeded: bool
    language: str | None
    vtt_key: str | None
    error: str | None
    reopened: bool = False  # a staff requeue: the job runs again, its result is to come


JOB_GONE = "The transcription job is gone (deleted or pruned)."
CANCELLED = "The transcription job was cancelled."


def transcription_languages() -> set[str]:
    """Languages a transcript may be stored in (the library's rule: settings.LANGUAGES)."""
    languages = getattr(settings, "ALL_LANGUAGES", settings.LANGUAGES)
    return {code for code, _name in languages}


def _outcome(job_uuid, video: Video | None, error: str | None, reopened=False):
    succeeded = error is None and not reopened and video is not None
    return TranscriptionOutcome(
        job_uuid=str(job_uuid),
        destination=video.directory if video is not None else "",
        base_name=(video.baseFilename or "") if video is not None else "",
        succeeded=succeeded,
        language=video.language if succeeded else None,
        vtt_key=video.transcriptFileName if succeeded else None,
        error=None if succeeded or reopened else (error or JOB_GONE),
        reopened=reopened,
    )


def _host_tell(job_uuid: str, video_uuid: str | None, error: str | None, reopened=False):
    """After commit: build the outcome and call the host; never raises."""
    try:
        video = Video.objects.filter(uuid=video_uuid).first()
        if video is None:
            return
        outcome = _outcome(job_uuid, video, error, reopened)
        import_string(settings.RUNNERS_TRANSCRIPTION_ENDED_CALLBACK)(outcome=outcome)
    except Exception:
        logger.exception("The transcription-ended callback failed for job %s.", job_uuid)


def transcription_tell_on_commit(
    *, runner_job: RunnerJob, error: str | None, reopened: bool = False
) -> None:
    """Tell the host, after commit, how this transcription job ended (``error`` None: its
    VTT is stored), or that it was ``reopened`` by a staff requeue."""
    transaction.on_commit(
        partial(
            _host_tell,
            str(runner_job.uuid),
            runner_job_video_uuid(runner_job),
            error,
            reopened,
        )
    )


def transcription_job_outcome(*, job_uuid) -> TranscriptionOutcome | None:
    """How the job ``job_uuid`` ended, read from its row (an outcome lost on the way), or
    None while it is still active. A job that no longer exists is a failure."""
    job = RunnerJob.objects.filter(uuid=job_uuid).only("state", "error", "privatePayload")
    job = job.first()
    if job is None:
        return _outcome(job_uuid, None, JOB_GONE)
    if job.state in ACTIVE_STATES:
        return None
    video = Video.objects.filter(uuid=runner_job_video_uuid(job)).first()
    if job.state == RunnerJobState.COMPLETED:
        return _outcome(job_uuid, video, None)
    if job.state in (RunnerJobState.CANCELLED, RunnerJobState.PARENT_CANCELLED):
        return _outcome(job_uuid, video, CANCELLED)
    return _outcome(job_uuid, video, job.error or "The transcription failed.")


class TranscriptionHandler(TranscriptionJobHandler):
    """``video-transcription`` jobs: no silent completion, ping on commit, host told once."""

    create_runner_job = HLSTranscodingJobHandler.create_runner_job  # ping on commit
    priority = JobPriority.STAFF  # staff work: after every upload's jobs (issue 18)
    ping = True

    def complete(self, runner_job: RunnerJob, result_payload):
        runner_job.state = RunnerJobState.COMPLETING
        runner_job.save()
        error = None
        try:
            with transaction.atomic():
                self.specific_complete(runner_job, result_payload)
            self.master_rewrite(runner_job)
            runner_job.state = RunnerJobState.COMPLETED
        except Exception as err:
            if storage_outage(err, video_storage()):  # not a failure: kept for later (deferred.py)
                raise Unreachable(outage_describe(err)) from err
            if not isinstance(err, TranscriptionRejected):
                logger.exception("Completion of transcription job %s failed.", runner_job.uuid)
            error = str(err)[:2000] or type(err).__name__
            runner_job.state = RunnerJobState.ERRORED
            runner_job.error = error
        runner_job.progress = None
        runner_job.finishedAt = timezone.now()
        runner_job.save()
        runner_job_finished_observe(runner_job)
        transcription_tell_on_commit(runner_job=runner_job, error=error)

    def specific_complete(self, runner_job: RunnerJob, result_payload):
        """Check the language and the file, then write the VTT at its key (replacing)."""
        language = result_payload.get("inputLanguage")
        vtt = result_payload.get("vttFile")
        if not isinstance(language, str) or not language.strip():
            raise TranscriptionRejected("The runner sent no transcription language.")
        language = language.strip()
        if language not in transcription_languages():
            raise TranscriptionRejected(f"Unknown transcription language {language[:20]!r}.")
        if not isinstance(vtt, UploadedFile) or not vtt.size:
            raise TranscriptionRejected("The runner sent no VTT file.")
        head = vtt.read(6)
        vtt.seek(0)
        if head != b"WEBVTT":
            raise TranscriptionRejected("The transcript is not a WebVTT file.")
        video = Video.objects.select_for_update().filter(uuid=runner_job_video_uuid(runner_job))
        video = video.first()
        if video is None:
            raise TranscriptionRejected("The transcribed video is gone.")
        key = subtitle_vtt_key(
            destination=video.directory, base_name=video.baseFilename or "", language=language
        )
        storage_replace(video_storage(), key, vtt)
        video.language = language
        video.transcriptFileName = key
        video.save(update_fields=["language", "transcriptFileName", "updatedAt"])

    @staticmethod
    def master_rewrite(runner_job: RunnerJob) -> None:
        """The master playlist again, now offering the new transcript (outside any lock: the
        rows are committed, the bytes are the same whoever writes them)."""
        video = Video.objects.filter(uuid=runner_job_video_uuid(runner_job)).first()
        playlist = VideoStreamingPlaylist.objects.filter(video=video).first() if video else None
        if playlist is not None:
            master_playlist_write(video=video, playlist=playlist)

    def error(self, runner_job: RunnerJob, message: str, from_parent: bool = False):
        """Retry until ``TRANSCODING_RUNNER_MAX_FAILURE`` (ping on commit), then errored and
        the host told with the reason."""
        if runner_job.failures < settings.TRANSCODING_RUNNER_MAX_FAILURE and not from_parent:
            runner_job_to_pending(job=runner_job, failures=runner_job.failures)
            return
        runner_job.error = message
        runner_job.set_to_error_or_cancel(RunnerJobState.ERRORED)
        runner_job_finished_observe(runner_job)
        transcription_tell_on_commit(
            runner_job=runner_job, error=message or "The transcription failed."
        )

    def abort(self, runner_job: RunnerJob):
        """Back to pending for another runner, unless it failed too often (counted)."""
        runner_job_abort(self, runner_job)


class TranscriptionBusy(Exception):
    """A transcription job of this version is still pending or running."""


def transcription_start(*, destination: str, base_name: str, source_key: str | None = None) -> str:
    """Create the transcription job of the version transcoded under ``destination``; runners
    pinged on commit. The runner downloads through the job's source URL, which serves the
    version's highest rendition once the upload is gone (the audio is the same).

    ``source_key``: media in the video storage for a version no runner transcoded (a legacy
    AWS video's highest mp4, copied there): its transcoded video is made, holding that
    source only, so the transcript is stored under ``destination`` like any other.

    Raises ``TranscriptionBusy`` when one is already pending or running, ``LookupError``
    when that version has no stored media. Returns the job uuid.
    """
    with transaction.atomic():
        video = (
            Video.objects.select_for_update()
            .filter(directory=destination, files__isnull=False)
            .order_by("-createdAt")
            .first()
        )
        if video is None and source_key:
            video = _transcoded_video_of_source(
                destination=destination, base_name=base_name, source_key=source_key
            )
        if video is None:
            raise LookupError(f"No transcoded media under {destination}.")
        active = runner_jobs_of_video(video_uuid=video.uuid).filter(
            type=RunnerJobType.VIDEO_TRANSCRIPTION, state__in=ACTIVE_STATES
        )
        if active.exists():
            raise TranscriptionBusy("A transcription of this version is already running.")
        domain = settings.RUNNERS_CALLBACK_DOMAIN.rstrip("/")
        job = TranscriptionHandler().create(video=video, domain=domain)
    return str(job.uuid)


def _transcoded_video_of_source(*, destination: str, base_name: str, source_key: str) -> Video:
    """A transcoded video (published: nothing to transcode) whose only file is the source a
    runner downloads for its transcription."""
    video = Video.objects.create(
        state=VideoState.PUBLISHED, directory=destination, baseFilename=base_name
    )
    VideoFile.objects.create(
        video=video,
        filename=source_key,
        extname=os.path.splitext(source_key)[1],
        size=video_storage().size(source_key),
        resolution=0,
    )
    return video
