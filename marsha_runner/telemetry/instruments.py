"""Prometheus counters and histograms, recorded where things happen.

Events (a request answered, a job finished, a video ready) are counted in the process where
they happen; with ``PROMETHEUS_MULTIPROC_DIR`` set (an environment variable, read by
prometheus-client when it is first imported) every process writes its values to files in
that folder and ``/metrics`` adds up all of them: several uvicorn workers and the Celery
workers of one host give one total. Gauges of the current state (jobs by state, runners
online, videos by state) are not here: ``/metrics`` reads them from the database at scrape
time (``observability.collectors``), once, whichever process answers.

Label values come from short closed lists (``_bounded``): never a video id, a job uuid, a
path or a runner name, so the number of series stays fixed whatever the traffic.
"""

from prometheus_client import Counter, Histogram, disable_created_metrics

# No ``*_created`` series beside each counter and histogram: twice the series for a
# timestamp no panel or alert reads.
disable_created_metrics()

PREFIX = "marsha_runner"
JOB_TYPES = (
    "vod-web-video-transcoding",
    "vod-hls-transcoding",
    "vod-audio-merge-transcoding",
    "live-rtmp-hls-transcoding",
    "video-studio-transcoding",
    "video-transcription",
)
RESOLUTIONS = ("144", "240", "360", "480", "720", "1080", "1440", "2160")
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
# Seconds: a job takes seconds (240p of a short clip) to hours (2160p of a long lecture).
JOB_BUCKETS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400)
VIDEO_BUCKETS = (5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 43200)
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

http_requests = Counter(
    f"{PREFIX}_http_requests",
    "HTTP requests answered, by route name (the URL pattern's name), method and status.",
    ["route", "method", "status"],
)
http_request_duration = Histogram(
    f"{PREFIX}_http_request_duration_seconds",
    "Time to answer an HTTP request, by route name.",
    ["route"],
    buckets=HTTP_BUCKETS,
)
jobs_finished = Counter(
    f"{PREFIX}_runner_jobs_finished",
    "Runner jobs that reached a final state (completed, errored, parent_errored, cancelled, "
    "parent_cancelled).",
    ["type", "state"],
)
job_duration = Histogram(
    f"{PREFIX}_runner_job_duration_seconds",
    "Accepted → completed time of a successful runner job, by type and resolution.",
    ["type", "resolution"],
    buckets=JOB_BUCKETS,
)
job_failures = Counter(
    f"{PREFIX}_runner_job_failures",
    "Failures reported for runner jobs (a runner's error or abort, a stalled job), retried "
    "or not.",
    ["type", "reason"],
)
videos_finished = Counter(
    f"{PREFIX}_videos_transcoded",
    "Transcodings that ended, by outcome (ready or error).",
    ["state"],
)
upload_to_ready = Histogram(
    f"{PREFIX}_video_upload_to_ready_seconds",
    "upload-ended → ready time of a video's transcoding (every rendition stored).",
    buckets=VIDEO_BUCKETS,
)
upload_to_playable = Histogram(
    f"{PREFIX}_video_upload_to_playable_seconds",
    "upload-ended → playable time (the first moment a viewer can watch the new upload).",
    buckets=VIDEO_BUCKETS,
)
migration_objects = Counter(
    f"{PREFIX}_migration_objects",
    "Legacy objects handled by the migration to Scaleway, by outcome (copied, failed).",
    ["outcome"],
)
migration_bytes = Counter(
    f"{PREFIX}_migration_bytes", "Bytes of legacy objects copied and verified."
)
FAILURE_REASONS = ("error", "abort", "stalled")
JOB_FINAL_STATES = ("completed", "errored", "parent_errored", "cancelled", "parent_cancelled")


def _bounded(value, allowed) -> str:
    value = str(value) if value is not None else "none"
    return value if value in allowed else "other"


def job_type_label(value) -> str:
    """A job type as a label value: one of JOB_TYPES, else ``other``."""
    return _bounded(value, JOB_TYPES)


def _seconds(start, end) -> float | None:
    if start is None or end is None:
        return None
    return max((end - start).total_seconds(), 0.0)


_http_children: dict = {}


def http_request_record(*, route: str, method: str, status: int, seconds: float) -> None:
    """``route`` is a URL pattern's name (or ``unmatched``): a closed list, unlike paths.
    Called on every request (runners' ``jobs/request`` herds included): the labelled children
    are kept, not looked up each time."""
    key = (route, method, status)
    children = _http_children.get(key)
    if children is None:
        label_method = _bounded(method, HTTP_METHODS)
        label_status = str(int(status)) if 100 <= int(status) <= 599 else "other"
        children = (
            http_requests.labels(route=route, method=label_method, status=label_status),
            http_request_duration.labels(route=route),
        )
        if len(_http_children) < 10_000:  # bounded like the labels: routes × methods × codes
            _http_children[key] = children
    children[0].inc()
    children[1].observe(seconds)


def job_finished_record(
    *, job_type, state: str, resolution=None, started=None, finished=None, count: int = 1
):
    """``count`` jobs reached ``state`` (one of JOB_FINAL_STATES); a completed one with its
    accept → finish time is observed in the duration histogram."""
    job_type = job_type_label(job_type)
    jobs_finished.labels(type=job_type, state=_bounded(state, JOB_FINAL_STATES)).inc(count)
    seconds = _seconds(started, finished)
    if state == "completed" and seconds is not None:
        resolution = "none" if resolution is None else _bounded(resolution, RESOLUTIONS)
        job_duration.labels(type=job_type, resolution=resolution).observe(seconds)


def job_failure_record(*, job_type, reason: str) -> None:
    job_failures.labels(
        type=job_type_label(job_type), reason=_bounded(reason, FAILURE_REASONS)
    ).inc()


def video_outcome_record(*, ready: bool) -> None:
    videos_finished.labels(state="ready" if ready else "error").inc()


def video_ready_time_record(*, upload_ended, ready) -> None:
    seconds = _seconds(upload_ended, ready)
    if seconds is not None:
        upload_to_ready.observe(seconds)


def video_playable_time_record(*, upload_ended, playable) -> None:
    seconds = _seconds(upload_ended, playable)
    if seconds is not None:
        upload_to_playable.observe(seconds)


def migration_objects_record(*, copied: int = 0, failed: int = 0, size: int = 0) -> None:
    """``copied`` objects verified (``size`` bytes in all), ``failed`` objects in error."""
    if copied:
        migration_objects.labels(outcome="copied").inc(copied)
    if failed:
        migration_objects.labels(outcome="failed").inc(failed)
    if size:
        migration_bytes.inc(size)
