"""Read paths of operations: the queue's health, cheap enough to scrape every 15 s.

One selector for the admin's health panel, ``health_report`` and ``/metrics``; each of its
reads goes through an index over the rows it counts, so its cost follows the jobs in flight,
not the millions finished (``bench/admin.py`` prints it at 1,000 and 1,000,000 jobs).
"""

from dataclasses import asdict, dataclass, field
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from marsha_runner.counting import bounded_counts
from marsha_runner.runners.selectors import (
    runner_job_state_label,
    runner_jobs_health_counted,
    runner_jobs_oldest_pending,
    runners_counts,
)
from marsha_runner.videos.constants import UploadState
from marsha_runner.videos.selectors import videos_by_state_counted

ERRORED_WINDOW = timedelta(hours=24)
# Each count of the health is exact up to this many rows, the planner's estimate beyond: a
# thousand pending jobs is an incident whatever the digits after it, and the scrape stays
# under a few milliseconds of index reads (bench/admin.py).
HEALTH_COUNT_BOUND = 1_000


@dataclass(frozen=True)
class QueueHealth:
    """What the health report prints, the admin's health panel shows and /metrics exports."""

    jobs_pending: int
    jobs_processing: int
    jobs_errored_24h: int
    oldest_pending_age: float | None  # seconds; None when nothing waits
    runners_online: int
    runners_offline: int
    videos_processing: int
    videos_error: int
    measured_on: str
    # Jobs not finished, by state label (pending, processing…) and type: [{state, type, count}].
    jobs_active: list = field(default_factory=list)
    videos_by_state: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def queue_health(*, now=None) -> QueueHealth:
    """Jobs, runners and videos at a glance, in three queries whatever the sizes: the counts
    in one statement (exact up to ``HEALTH_COUNT_BOUND`` each, the planner's estimate beyond,
    one EXPLAIN per count past it), the oldest pending job, the runners.

    A runner is online when it contacted us within ``RUNNERS_ONLINE_WINDOW`` seconds.
    """
    now = now or timezone.now()
    jobs = runner_jobs_health_counted(errored_since=now - ERRORED_WINDOW)
    videos = videos_by_state_counted()
    counts = dict(
        zip(
            [*jobs, *videos],
            bounded_counts([*jobs.values(), *videos.values()], bound=HEALTH_COUNT_BOUND),
            strict=True,
        )
    )
    oldest = runner_jobs_oldest_pending()
    runners = runners_counts(online_since=now - timedelta(seconds=settings.RUNNERS_ONLINE_WINDOW))
    active = {key: counts[key] for key in jobs if key != "errored" and counts[key]}
    return QueueHealth(
        jobs_pending=_total(active, "pending"),
        jobs_processing=_total(active, "processing"),
        jobs_errored_24h=counts["errored"],
        oldest_pending_age=round((now - oldest).total_seconds(), 1) if oldest else None,
        runners_online=runners["online"],
        runners_offline=runners["offline"],
        videos_processing=counts[UploadState.PROCESSING],
        videos_error=counts[UploadState.ERROR],
        measured_on=now.isoformat(),
        jobs_active=[
            {"state": runner_job_state_label(state), "type": job_type, "count": count}
            for (state, job_type), count in sorted(active.items())
        ],
        videos_by_state={state: counts[state] for state in videos},
    )


def _total(active: dict, label: str) -> int:
    return sum(n for (state, _), n in active.items() if runner_job_state_label(state) == label)
