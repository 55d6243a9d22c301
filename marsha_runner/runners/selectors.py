"""Read paths over the library's runner tables."""

from django_peertube_runner_connector.models import RunnerJob, RunnerJobState

# A transcoding is not over while one of its jobs is in one of these states.
ACTIVE_STATES = (
    RunnerJobState.PENDING,
    RunnerJobState.WAITING_FOR_PARENT_JOB,
    RunnerJobState.PROCESSING,
    RunnerJobState.COMPLETING,
)


def runner_job_video_uuid(runner_job: RunnerJob) -> str | None:
    """The transcoded video a job belongs to (the library keeps it in its private payload)."""
    return (runner_job.privatePayload or {}).get("videoUUID")


def runner_jobs_of_video(*, video_uuid):
    """Jobs of one transcoded video (the library links them by privatePayload.videoUUID)."""
    return RunnerJob.objects.filter(privatePayload__videoUUID=str(video_uuid))


def runner_jobs_active_exist(*, video_uuid) -> bool:
    return runner_jobs_of_video(video_uuid=video_uuid).filter(state__in=ACTIVE_STATES).exists()


def runner_jobs_available(*, job_types=None, limit: int = 10):
    """Pending jobs by priority (the library's query; served by our partial index)."""
    jobs = RunnerJob.objects.filter(state=RunnerJobState.PENDING)
    if job_types:
        jobs = jobs.filter(type__in=job_types)
    return jobs.order_by("priority")[:limit]
