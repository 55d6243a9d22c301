"""A runner job's failures: counted, kept beside the job for staff, and the job sent back to
pending or errored.

Apart from the protocol services because two callers count failures: a runner's ``error``
call (``protocol.runner_job_fail``) and the watchdog's stalled jobs (``watchdog.py``); one
place decides what a failure does.
"""

import logging

from django_peertube_runner_connector.models import RunnerJob

from .job_handlers import runner_job_handler
from .models import RunnerJobFailure
from .observe import runner_job_failure_observe

logger = logging.getLogger(__name__)


def runner_job_failure_record(
    *, job: RunnerJob, message: str, reason: str = "error", counted: bool = True
) -> None:
    """One more failure for a locked processing job: back to pending (runners pinged), or
    errored at ``TRANSCODING_RUNNER_MAX_FAILURE`` (children parent-errored, host told).

    The one place failures are counted: a runner's error call and the watchdog's stalled jobs
    (``reason`` labels the failures metric: ``error`` or ``stalled``). ``counted`` False (the
    failure was our outage, not the runner's): back to pending, the count unchanged.
    """
    if not counted:
        logger.warning("Runner job %s failed during a storage outage: not counted.", job.uuid)
        runner_job_handler(job).abort(runner_job=job)
        return
    job.failures += 1
    runner_job_failure_observe(job, reason=reason)
    runner_job_failure_keep(job=job, message=message)
    runner_job_handler(job).error(runner_job=job, message=message)


def runner_job_failure_keep(*, job: RunnerJob, message: str) -> None:
    """Keep this failure (time, runner, message) beside the job: staff read each one."""
    runner_name = job.runner.name if job.runner_id else ""
    RunnerJobFailure.objects.create(job_uuid=job.uuid, runner_name=runner_name, message=message)
