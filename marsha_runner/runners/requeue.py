"""The one way a runner job waits for a runner again.

Every path back to ``pending`` goes through ``runner_job_to_pending``: a runner's error or
abort under ``TRANSCODING_RUNNER_MAX_FAILURE`` (failures already counted), a job whose runner
left (unregistered: not counted), a stalled job (counted by the watchdog) and a staff requeue
(failures reset to 0). Only ``failures`` differs between them.
"""

from django.conf import settings
from django_peertube_runner_connector.models import RunnerJob

from .socket import runners_ping_on_commit


def runner_job_to_pending(*, job: RunnerJob, failures: int) -> None:
    """``job`` (locked by the caller) back to pending with ``failures`` counted so far: no
    runner, token, progress, times or error left from its last run; runners pinged on commit."""
    job.reset_to_pending()
    job.failures = failures
    job.error = None
    job.runner = None
    job.save()
    runners_ping_on_commit()


def runner_job_abort(handler, job: RunnerJob) -> None:
    """A handler's ``abort``: back to pending for another runner with its failures as they
    are, unless it failed too often already (then the handler's own ``error``)."""
    if job.failures >= settings.TRANSCODING_RUNNER_MAX_FAILURE:
        handler.error(job, "Aborted too many times.")
        return
    handler.specific_abort(job)
    runner_job_to_pending(job=job, failures=job.failures)
