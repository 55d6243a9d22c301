"""The hardened runner API: the library's viewsets, closed where DESIGN §7.1/§7.9 say.

Runners authenticate in the body (``runnerToken``, plus ``jobToken`` on job calls), so
the project's DRF defaults (IsAuthenticated, throttles) are switched off here. On update,
success, error and abort the job row is locked and must be PROCESSING, accepted by this
runner, with this jobToken — otherwise nothing changes and the answer is a PeerTube problem
document whose ``code`` the runner understands. Tokens are never logged.
"""

import logging
import uuid as uuid_lib
from http import HTTPStatus
from urllib.parse import urlparse

from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.http import Http404, HttpResponseRedirect
from django.utils import timezone
from django_peertube_runner_connector.models import (
    Runner,
    RunnerJob,
    RunnerJobState,
    RunnerJobType,
    RunnerRegistrationToken,
    VideoFile,
)
from django_peertube_runner_connector.serializers import SimpleRunnerJobSerializer
from django_peertube_runner_connector.storage import video_storage
from django_peertube_runner_connector.utils.request import get_client_ip
from django_peertube_runner_connector.views import RunnerJobViewSet, RunnerViewSet
from rest_framework import exceptions, status
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from .handlers import runner_job_handler
from .selectors import runner_job_video_uuid, runner_jobs_available

logger = logging.getLogger(__name__)

PROBLEM_TYPE = "https://docs.joinpeertube.org/api-rest-reference.html#section/Errors/"
PROBLEM_CONTENT_TYPE = "application/problem+json"


class RunnerProblem(Exception):
    """Refuse a runner call: becomes a PeerTube problem document."""

    def __init__(self, status_code: int, code: str, detail: str):
        super().__init__(detail)
        self.status_code, self.code, self.detail = status_code, code, detail


def problem_response(status_code: int, code: str, detail: str) -> Response:
    body = {
        "type": PROBLEM_TYPE + code,
        "title": HTTPStatus(status_code).phrase,
        "status": status_code,
        "detail": detail,
        "code": code,
    }
    return Response(body, status=status_code, content_type=PROBLEM_CONTENT_TYPE)


def runner_exception_handler(exc, context):
    """Every error of the runner API, ours or DRF's or the library's, as a problem document."""
    if isinstance(exc, RunnerProblem):
        return problem_response(exc.status_code, exc.code, exc.detail)
    if isinstance(exc, Http404):
        return problem_response(404, "not_found", str(exc) or "Not found.")
    if isinstance(exc, exceptions.ValidationError | exceptions.ParseError):
        return problem_response(400, "invalid_request", str(exc.detail))
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    detail = response.data.get("detail") if isinstance(response.data, dict) else None
    return problem_response(
        response.status_code, getattr(exc, "default_code", "error"), str(detail or exc)
    )


def _string(data, name: str, *, required=True, max_length=255) -> str | None:
    value = data.get(name)
    if value is None or value == "":
        if required:
            raise RunnerProblem(400, "invalid_request", f"{name} is required.")
        return None
    if not isinstance(value, str) or len(value) > max_length:
        raise RunnerProblem(400, "invalid_request", f"{name} must be a string.")
    return value


def _uuid(value, *, what="runner job") -> str:
    try:
        return str(uuid_lib.UUID(str(value)))
    except ValueError as err:
        code = "runner_job_not_found" if what == "runner job" else "not_found"
        raise RunnerProblem(404, code, f"Unknown {what}.") from err


class RunnerApiMixin:
    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = []
    # PeerTube's runner protocol, documented upstream; kept out of our OpenAPI schema.
    schema = None

    def get_exception_handler(self):
        return runner_exception_handler

    def _runner(self, request, *, lock=False) -> Runner:
        token = _string(request.data, "runnerToken")
        runners = Runner.objects.select_for_update() if lock else Runner.objects
        runner = runners.filter(runnerToken=token).first()
        if runner is None:
            raise RunnerProblem(404, "unknown_runner_token", "Unknown runner token.")
        return runner

    def _job_locked(self, uuid) -> RunnerJob:
        job = RunnerJob.objects.select_for_update().filter(uuid=_uuid(uuid)).first()
        if job is None:
            raise RunnerProblem(404, "runner_job_not_found", "Unknown runner job.")
        return job

    def _job_of_runner(self, request, uuid) -> tuple[Runner, RunnerJob]:
        """The job, locked, processing by this runner with this jobToken; else refused."""
        runner = self._runner(request)
        job_token = _string(request.data, "jobToken")
        job = self._job_locked(uuid)
        if job.runner_id != runner.id:
            raise RunnerProblem(403, "runner_job_not_owned", "This job is not yours.")
        if job.state != RunnerJobState.PROCESSING:
            raise RunnerProblem(
                409, "runner_job_not_in_processing_state", 'Job is not in "processing" state.'
            )
        if job.processingJobToken != job_token:
            raise RunnerProblem(403, "invalid_job_token", "Invalid job token.")
        return runner, job

    @staticmethod
    def _contact(runner: Runner, request):
        runner.update_last_contact(get_client_ip(request))


class HardenedRunnerViewSet(RunnerApiMixin, RunnerViewSet):
    """register (200) and unregister (204)."""

    @action(detail=False, methods=["post"], url_path="register")
    def register(self, request):
        token = _string(request.data, "registrationToken")
        name = _string(request.data, "name")
        _string(request.data, "description", required=False)
        if not RunnerRegistrationToken.objects.filter(registrationToken=token).exists():
            raise RunnerProblem(
                404, "invalid_registration_token", "Registration token is invalid."
            )
        if Runner.objects.filter(name=name).exists():
            raise RunnerProblem(409, "runner_name_taken", "A runner with this name exists.")
        response = super().register(request)
        if response.status_code != status.HTTP_200_OK:
            raise RunnerProblem(400, "invalid_request", "Invalid runner registration.")
        logger.info("Runner %s registered.", name)
        return response

    @action(detail=False, methods=["post"], url_path="unregister")
    def unregister(self, request):
        runner = self._runner(request)
        logger.info("Runner %s unregistered.", runner.name)
        runner.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class HardenedRunnerJobViewSet(RunnerApiMixin, RunnerJobViewSet):
    """request/accept (200), update/success/error/abort (204), source download (302)."""

    @action(detail=False, methods=["post"], url_path="request")
    def request_runner_job(self, request):
        runner = self._runner(request)
        job_types = request.data.get("jobTypes")
        if job_types is not None and (
            not isinstance(job_types, list) or not all(isinstance(t, str) for t in job_types)
        ):
            raise RunnerProblem(400, "invalid_request", "jobTypes must be a list of strings.")
        jobs = runner_jobs_available(job_types=job_types)
        self._contact(runner, request)
        return Response({"availableJobs": SimpleRunnerJobSerializer(jobs, many=True).data})

    @action(detail=True, methods=["post"], url_path="accept")
    def accept_runner_job(self, request, uuid=None):
        runner = self._runner(request)
        with transaction.atomic():
            job = self._job_locked(uuid)
            if job.state != RunnerJobState.PENDING:
                raise RunnerProblem(
                    409,
                    "runner_job_not_in_pending_state",
                    "This job is not in pending state anymore.",
                )
            job.state = RunnerJobState.PROCESSING
            job.processingJobToken = f"ptrjt-{uuid_lib.uuid4()}"
            job.startedAt = timezone.now()
            job.runner = runner
            job.save()
        self._contact(runner, request)
        logger.info("Runner %s accepted job %s (%s).", runner.name, job.uuid, job.type)
        return Response({"job": self.get_serializer(job).data}, status=status.HTTP_200_OK)

    @action(detail=True, methods=["post"], url_path="update")
    def update_runner_job(self, request, uuid=None):
        progress = request.data.get("progress")
        if progress is not None:
            try:
                progress = float(progress)
            except (TypeError, ValueError) as err:
                raise RunnerProblem(400, "invalid_request", "progress must be a number.") from err
            if not 0 <= progress <= 100:
                raise RunnerProblem(400, "invalid_request", "progress must be within 0-100.")
        with transaction.atomic():
            runner, job = self._job_of_runner(request, uuid)
            runner_job_handler(job).update(runner_job=job, progress=progress)
        self._contact(runner, request)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @action(detail=True, methods=["post"], url_path="success")
    def success_runner_job(self, request, uuid=None):
        with transaction.atomic():
            runner, job = self._job_of_runner(request, uuid)
            if "transcription" in job.type:
                result = {
                    "inputLanguage": request.data.get("payload[inputLanguage]"),
                    "vttFile": request.data.get("payload[vttFile]"),
                }
            else:
                result = {
                    "video_file": request.data.get("payload[videoFile]"),
                    "resolution_playlist_file": request.data.get(
                        "payload[resolutionPlaylistFile]"
                    ),
                }
                needed = ["video_file"]
                if job.type == RunnerJobType.VOD_HLS_TRANSCODING:
                    needed.append("resolution_playlist_file")
                for name in needed:
                    if not isinstance(result[name], UploadedFile):
                        raise RunnerProblem(
                            400, "invalid_request", f"payload {name} must be an uploaded file."
                        )
            runner_job_handler(job).complete(runner_job=job, result_payload=result)
        self._contact(runner, request)
        logger.info("Runner %s finished job %s.", runner.name, job.uuid)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @action(detail=True, methods=["post"], url_path="error")
    def error_runner_job(self, request, uuid=None):
        message = _string(request.data, "message", required=False, max_length=10000)
        with transaction.atomic():
            runner, job = self._job_of_runner(request, uuid)
            job.failures += 1
            logger.warning("Runner %s failed job %s: %s", runner.name, job.uuid, message)
            runner_job_handler(job).error(runner_job=job, message=message or "Runner error")
        self._contact(runner, request)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @action(detail=True, methods=["post"], url_path="abort")
    def abort_runner_job(self, request, uuid=None):
        _string(request.data, "reason", required=False, max_length=10000)
        with transaction.atomic():
            runner, job = self._job_of_runner(request, uuid)
            job.failures += 1
            logger.info("Runner %s aborted job %s.", runner.name, job.uuid)
            runner_job_handler(job).abort(runner_job=job)
        self._contact(runner, request)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @action(
        detail=False,
        methods=["post"],
        url_path="files/videos/(?P<video_id>[^/.]+)/(?P<job_id>[^/.]+)/max-quality",
        url_name="download_video_file",
    )
    def download_video_file(self, request, video_id=None, job_id=None):
        """302 to the source (a 301 would be cached; 307/308 would replay the POST)."""
        video_id = _uuid(video_id, what="video")
        with transaction.atomic():
            runner, job = self._job_of_runner(request, job_id)
        if runner_job_video_uuid(job) != video_id:
            raise RunnerProblem(404, "runner_job_not_found", "This job is not of this video.")
        source = (
            VideoFile.objects.filter(video__uuid=video_id, streamingPlaylist__isnull=True)
            .order_by("-resolution")
            .first()
        )
        if source is None or not source.filename:
            raise RunnerProblem(404, "video_file_not_found", "The source file is gone.")
        url = video_storage.url(source.filename)
        if not urlparse(url).scheme and job.domain:
            url = job.domain.rstrip("/") + url
        logger.info("Runner %s downloads the source of %s.", runner.name, video_id)
        return HttpResponseRedirect(url)
