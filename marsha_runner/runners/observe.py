"""What the runners app tells the metrics: a job finished, a job failed (issue 20).

Recorded after the transaction commits (at once outside one): a rolled-back move is not
counted. Labels are the job's type, its final state and its resolution, all closed lists
(``telemetry.instruments``).
"""

from functools import partial

from django.db import transaction
from django_peertube_runner_connector.models import RunnerJob

from marsha_runner.telemetry.instruments import job_failure_record, job_finished_record

from .naming import runner_job_resolution
from .selectors import runner_job_state_label


def runner_job_finished_observe(job: RunnerJob, *, state=None, count: int = 1) -> None:
    """``job`` reached a final state (completed, errored, parent errored, cancelled), or
    ``count`` jobs like it reached ``state`` (a cancel's descendants)."""
    transaction.on_commit(
        partial(
            job_finished_record,
            job_type=job.type,
            state=runner_job_state_label(job.state if state is None else state),
            resolution=runner_job_resolution(job),
            started=job.startedAt,
            finished=job.finishedAt,
            count=count,
        )
    )


def runner_job_failure_observe(job: RunnerJob, *, reason: str) -> None:
    """A failure counted against ``job`` (``error``, ``abort`` or ``stalled``)."""
    transaction.on_commit(partial(job_failure_record, job_type=job.type, reason=reason))
