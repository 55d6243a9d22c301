"""Which handler runs a runner job: ours for the job types we create, the library's otherwise.

Its own module so that the handler modules (handlers.py, transcription.py, which builds on
handlers.py) never import each other both ways.
"""

from django_peertube_runner_connector.models import RunnerJob, RunnerJobType
from django_peertube_runner_connector.utils.job_handlers.get_job_handler import (
    get_runner_job_handler_class,
)

from .handlers import HLSTranscodingJobHandler
from .transcription import TranscriptionHandler


def runner_job_handler(runner_job: RunnerJob):
    """Our handler for the jobs we create; the library's for any other type."""
    if runner_job.type == RunnerJobType.VOD_HLS_TRANSCODING:
        return HLSTranscodingJobHandler()
    if runner_job.type == RunnerJobType.VIDEO_TRANSCRIPTION:
        return TranscriptionHandler()
    return get_runner_job_handler_class(runner_job)()
