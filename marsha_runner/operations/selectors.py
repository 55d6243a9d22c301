"""Read paths of operations: the queue's health, in a bounded number of queries."""

from dataclasses import asdict, dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, Q
from django.utils import timezone

from marsha_runner.runners.selectors import runner_jobs_counts, runners_counts
from marsha_runner.videos.constants import UploadState
from marsha_runner.videos.models import Video

ERRORED_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class QueueHealth:
    """What the health report prints and the admin's health panel shows."""

    jobs_pending: int
    jobs_processing: int
    jobs_errored_24h: int
    oldest_pending_age: float | None  # seconds; None when nothing waits
    runners_online: int
    runners_offline: int
    videos_processing: int
    videos_error: int
    measured_on: str

    def as_dict(self) -> dict:
        return asdict(self)


def queue_health(*, now=None) -> QueueHealth:
    """Jobs, runners and videos at a glance: three aggregate queries, whatever the table sizes.

    A runner is online when it contacted us within ``RUNNERS_ONLINE_WINDOW`` seconds.
    """
    now = now or timezone.now()
    jobs = runner_jobs_counts(errored_since=now - ERRORED_WINDOW)
    runners = runners_counts(online_since=now - timedelta(seconds=settings.RUNNERS_ONLINE_WINDOW))
    videos = Video.objects.aggregate(
        processing=Count("pk", filter=Q(upload_state=UploadState.PROCESSING)),
        error=Count("pk", filter=Q(upload_state=UploadState.ERROR)),
    )
    oldest = jobs["oldest_pending"]
    return QueueHealth(
        jobs_pending=jobs["pending"],
        jobs_processing=jobs["processing"],
        jobs_errored_24h=jobs["errored"],
        oldest_pending_age=round((now - oldest).total_seconds(), 1) if oldest else None,
        runners_online=runners["online"],
        runners_offline=runners["offline"],
        videos_processing=videos["processing"],
        videos_error=videos["error"],
        measured_on=now.isoformat(),
    )
