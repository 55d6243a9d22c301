"""A completion hit by an outage keeps the runner's work (issue 15, point 1), applied later by
runners_watchdog when the process that took the result is gone.

The storage's failure is simulated here (its writes raise botocore's connection error); the
fault tests on a real SeaweedFS (test_storage_outage.py) show the same through the process's
own retries.
"""

import botocore.exceptions
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django_peertube_runner_connector.models import RunnerJobState, VideoFile

from marsha_runner.operations.services import runners_watchdog
from marsha_runner.runners import handlers, protocol
from marsha_runner.runners.deferred import completions_deferred
from marsha_runner.runners.models import RunnerJob
from tests.runners.factories import job_tree, runner_make
from tests.runners.media import OUTCOMES, hls_rendition

pytestmark = [pytest.mark.django_db, pytest.mark.ffmpeg]


def _unreachable(*args, **kwargs):
    raise botocore.exceptions.EndpointConnectionError(endpoint_url="http://storage.invalid/")


def test_the_watchdog_applies_a_completion_its_process_could_not(
    videos_root, settings, tmp_path, monkeypatch, django_capture_on_commit_callbacks
):
    settings.RUNNERS_COMPLETION_SPOOL = str(tmp_path / "spool")
    settings.RUNNERS_COMPLETION_RETRY_DELAYS = [0]
    settings.RUNNERS_TRANSCODING_ENDED_CALLBACK = "tests.runners.media.record_outcome"
    OUTCOMES.clear()
    token = runner_make("runner-a")
    transcoded, parent, _children = job_tree(resolutions=(240,))
    job = protocol.runner_job_accept(runner_token=token, job_uuid=parent.uuid)
    video_file, playlist = hls_rendition(tmp_path, resolution=240)
    files = {
        "payload[videoFile]": SimpleUploadedFile(video_file.name, video_file.read_bytes()),
        "payload[resolutionPlaylistFile]": SimpleUploadedFile(
            playlist.name, playlist.read_bytes()
        ),
    }
    retried = []
    monkeypatch.setattr(protocol, "completion_retry_soon", lambda **kw: retried.append(kw))
    monkeypatch.setattr(handlers, "storage_replace", _unreachable)

    protocol.runner_job_succeed(
        runner_token=token, job_uuid=job.uuid, job_token=job.processingJobToken, files=files
    )  # answered 204: the result is kept, its process dies before retrying (nothing retries)
    job.refresh_from_db()
    assert (job.state, job.failures, job.error) == (RunnerJobState.COMPLETING, 0, None)
    assert completions_deferred() == [str(job.uuid)]
    assert retried == [{"job_uuid": job.uuid}]

    # Still down: the watchdog tries, keeps it; the job is not taken for a stalled one.
    report = runners_watchdog(stalled_timeout=0)
    assert report.counts == {"completions_deferred": 1}
    assert RunnerJob.objects.get(pk=job.pk).state == RunnerJobState.COMPLETING

    monkeypatch.undo()
    with django_capture_on_commit_callbacks(execute=True):
        report = runners_watchdog(stalled_timeout=0)
    assert report.counts == {"completions_completed": 1}
    job.refresh_from_db()
    assert (job.state, job.failures) == (RunnerJobState.COMPLETED, 0)
    assert completions_deferred() == []
    rows = VideoFile.objects.filter(video=transcoded, streamingPlaylist__isnull=False)
    assert list(rows.values_list("resolution", flat=True)) == [240]
    assert [outcome.resolutions for outcome in OUTCOMES] == [[240]]  # the host told once
    assert runners_watchdog(stalled_timeout=0).counts == {}
