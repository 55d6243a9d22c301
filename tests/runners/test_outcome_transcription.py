"""The transcoding outcome reads transcoding jobs only: a transcription job of the same
transcoded video (pending, done or failed) never delays, fails or breaks it (a transcription
job has no ``output``: reading its resolution raised KeyError)."""

import pytest
from django_peertube_runner_connector.models import RunnerJob, RunnerJobState

from marsha_runner.runners.outcome import transcoding_outcome
from marsha_runner.runners.selectors import transcoding_destinations_finished
from marsha_runner.runners.transcription import TranscriptionHandler
from tests.runners.factories import job_tree, job_tree_finish

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "transcription_state",
    [
        RunnerJobState.PENDING,
        RunnerJobState.PROCESSING,
        RunnerJobState.COMPLETED,
        RunnerJobState.ERRORED,
        RunnerJobState.CANCELLED,
    ],
)
def test_a_transcription_job_is_not_part_of_the_transcoding_outcome(transcription_state):
    video, parent, children = job_tree(directory="vod/abc/video/1")
    job_tree_finish(video=video, jobs=[parent, *children])
    job = TranscriptionHandler().create(video=video, domain="http://testserver")
    RunnerJob.objects.filter(pk=job.pk).update(state=transcription_state, error="boom")

    outcome = transcoding_outcome(video=video)

    assert outcome is not None, "the transcription does not hold the transcoding open"
    assert (outcome.succeeded, outcome.error) == (True, None)
    assert outcome.resolutions == [360, 720]
    assert transcoding_destinations_finished(destinations={video.directory}) == {video.directory}
