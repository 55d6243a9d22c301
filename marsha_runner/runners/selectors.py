"""Read paths over the library's runner tables."""

from django.db.models import Count, F, Func, IntegerField, Min, OuterRef, Q, Subquery, TextField
from django_peertube_runner_connector.models import (
    Runner,
    RunnerJob,
    RunnerJobState,
    RunnerJobType,
    Video,
)

from .models import RunnerJobFailure

# A transcoding is not over while one of its jobs is in one of these states.
ACTIVE_STATES = (
    RunnerJobState.PENDING,
    RunnerJobState.WAITING_FOR_PARENT_JOB,
    RunnerJobState.PROCESSING,
    RunnerJobState.COMPLETING,
)


def runner_job_state_label(state: int) -> str:
    """``RunnerJobState.PENDING`` → ``pending``: the name staff read in metrics and JSON."""
    return RunnerJobState(state).name.lower()


def runner_job_video_uuid(runner_job: RunnerJob) -> str | None:
    """The transcoded video a job belongs to (the library keeps it in its private payload)."""
    payload = runner_job.privatePayload
    return payload.get("videoUUID") if isinstance(payload, dict) else None


class JobVideoUUID(Func):
    """``privatePayload.videoUUID`` as text, spelled exactly as the index of migration 0005
    (``runners_runnerjob_video_uuid_text``), so each completion finds its jobs by index."""

    output_field = TextField()

    def __init__(self):
        super().__init__(F("privatePayload"))

    def as_postgresql(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection, template="(%(expressions)s ->> 'videoUUID')")

    def as_sqlite(self, compiler, connection, **extra):
        return self.as_sql(
            compiler, connection, template="json_extract(%(expressions)s, '$.videoUUID')"
        )


def runner_jobs_of_video(*, video_uuid):
    """Jobs of one transcoded video (the library links them by privatePayload.videoUUID)."""
    return RunnerJob.objects.alias(video_uuid=JobVideoUUID()).filter(video_uuid=str(video_uuid))


def runner_jobs_of_transcoding(*, video_uuid):
    """The transcoding jobs of one transcoded video: its transcription jobs (same video,
    no ``output``) are not part of the transcoding and never decide its outcome."""
    return runner_jobs_of_video(video_uuid=video_uuid).exclude(
        type=RunnerJobType.VIDEO_TRANSCRIPTION
    )


def runner_jobs_active_exist(*, video_uuid) -> bool:
    return runner_jobs_of_video(video_uuid=video_uuid).filter(state__in=ACTIVE_STATES).exists()


def runner_jobs_available(*, job_types=None, limit: int = 10):
    """Pending jobs, by priority class then oldest first (issue 18; served by the partial
    index of migration 0007)."""
    jobs = RunnerJob.objects.filter(state=RunnerJobState.PENDING)
    if job_types:
        jobs = jobs.filter(type__in=job_types)
    return jobs.order_by("priority", "createdAt", "id")[:limit]


def runners_with_activity(queryset, *, since):
    """Runners annotated with jobs in progress, completed and failed since ``since``.

    One correlated ``count(*)`` per column over the (runner, state, finishedAt) index (an
    index-only scan: no GROUP BY, no heap column): one query for a page of runners, whatever
    the size of the jobs table.
    """

    class SubqueryCount(Subquery):
        template = "(SELECT count(*) FROM (%(subquery)s) _count)"
        output_field = IntegerField()

    def count(**filters):
        jobs = RunnerJob.objects.filter(runner=OuterRef("pk"), **filters).order_by()
        return SubqueryCount(jobs.values("runner"))

    return queryset.annotate(
        jobs_in_progress=count(state=RunnerJobState.PROCESSING),
        jobs_completed_24h=count(state=RunnerJobState.COMPLETED, finishedAt__gte=since),
        jobs_failed_24h=count(state=RunnerJobState.ERRORED, finishedAt__gte=since),
    )


def transcoded_video_directories(*, video_uuids) -> dict[str, str]:
    """{transcoded video uuid: its directory} for many jobs' videos in one query."""
    rows = Video.objects.filter(uuid__in=[u for u in video_uuids if u]).values_list(
        "uuid", "directory"
    )
    return {str(uuid): directory for uuid, directory in rows}


def runner_jobs_of_videos(*, video_uuids):
    """Jobs of several transcoded videos (the indexed expression of runner_jobs_of_video)."""
    uuids = [str(u) for u in video_uuids]
    return RunnerJob.objects.alias(video_uuid=JobVideoUUID()).filter(video_uuid__in=uuids)


def runner_jobs_active_of_videos(*, video_uuids):
    """Active jobs of several transcoded videos, each with its ``video_uuid``: the same
    indexed expression (``JobVideoUUID``) as every other lookup of a video's jobs."""
    uuids = [str(u) for u in video_uuids]
    return RunnerJob.objects.annotate(video_uuid=JobVideoUUID()).filter(
        video_uuid__in=uuids, state__in=ACTIVE_STATES
    )


def transcoded_video_uuids_under(*, prefix: str) -> list[str]:
    """Uuids of the transcoded videos whose directory starts with ``prefix``."""
    return [
        str(u)
        for u in Video.objects.filter(directory__startswith=prefix).values_list("uuid", flat=True)
    ]


def runner_jobs_of_destination(*, destination: str):
    """Every job of the transcodings writing to ``destination``, with its runner, oldest
    first (the staff's view of one version's job tree)."""
    return (
        runner_jobs_of_videos(video_uuids=_transcoded_video_uuids_at(destination))
        .select_related("runner")
        .defer("processingJobToken", "runner__runnerToken")
        .order_by("createdAt")
    )


def _transcoded_video_uuids_at(directory: str):
    return Video.objects.filter(directory=directory).values_list("uuid", flat=True)


def runner_jobs_health_counted(*, errored_since) -> dict:
    """What the queue's health counts over the jobs, as ``(queryset, column)`` pairs for
    ``counting.bounded_counts``: each active (state, type) pair through the partial index of
    migration 0008, the errored since ``errored_since`` through ``(state, finishedAt)``.

    Each reads the rows it counts from an index, up to the caller's bound, never the
    table's history (one aggregate with filters scanned every job: 319 ms at a million).
    """
    counted = {
        (state, job_type): (RunnerJob.objects.filter(state=state, type=job_type), "state")
        for state in ACTIVE_STATES
        for job_type in RunnerJobType.values
    }
    counted["errored"] = (
        RunnerJob.objects.filter(state=RunnerJobState.ERRORED, finishedAt__gte=errored_since),
        "state",
    )
    return counted


def runner_jobs_oldest_pending():
    """Creation time of the oldest pending job (None when none waits): one index probe."""
    jobs = RunnerJob.objects.filter(state=RunnerJobState.PENDING)
    return jobs.aggregate(oldest=Min("createdAt"))["oldest"]


def runners_counts(*, online_since) -> dict:
    """Runners whose last contact is after ``online_since`` (online) and the others: one query.

    The library refreshes ``lastContact`` at most every five minutes, so ``online_since``
    must reach further back than that.
    """
    return Runner.objects.aggregate(
        online=Count("pk", filter=Q(lastContact__gte=online_since)),
        offline=Count("pk", filter=Q(lastContact__lt=online_since)),
    )


def transcoding_destinations_finished(*, destinations) -> set[str]:
    """Those of ``destinations`` holding job trees none of which has an active job left, in
    three queries (not one per tree): what a watchdog looking at every processing video
    needs. A destination with two trees (a launch, then missing renditions) is finished only
    when both are."""
    directories = {
        str(uuid): directory
        for uuid, directory in Video.objects.filter(directory__in=list(destinations)).values_list(
            "uuid", "directory"
        )
    }
    jobs = (
        RunnerJob.objects.annotate(video_uuid=JobVideoUUID())
        .filter(video_uuid__in=list(directories))
        .exclude(type=RunnerJobType.VIDEO_TRANSCRIPTION)
    )
    with_jobs = set(jobs.values_list("video_uuid", flat=True).distinct())
    busy = set(
        jobs.filter(state__in=ACTIVE_STATES).values_list("video_uuid", flat=True).distinct()
    )
    busy_destinations = {directories[uuid] for uuid in busy}
    return {directories[uuid] for uuid in with_jobs} - busy_destinations


def runner_job_failures(*, job_uuid) -> list:
    """Every recorded failure of one job, oldest first (time, runner, message)."""
    return list(RunnerJobFailure.objects.filter(job_uuid=job_uuid)[:100])
