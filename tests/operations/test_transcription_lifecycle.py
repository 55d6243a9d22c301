"""Every way a transcription job can end keeps its SubtitleTrack true (state and reason).

Cancel, requeue, runner errors, the watchdog (stalled job, unregistered runner), lost
outcomes and job pruning, over a real uvicorn server with the dev runner's whisper on spoken
media. Transcribe is allowed again after a cancel or an error.
"""

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from django_peertube_runner_connector.models import Runner, RunnerJob, RunnerJobState
from django_peertube_runner_connector.models import Video as TranscodedVideo

from marsha_runner.devrunner.client import TRANSCRIPTION_JOB, RunnerClient
from marsha_runner.operations.transcription import TranscriptionRefused, video_transcribe
from marsha_runner.runners.staff import (
    runner_job_cancel,
    runner_job_requeue,
    runner_unregister_staff,
)
from marsha_runner.videos.constants import SubtitleState
from marsha_runner.videos.models import Video
from tests.operations.test_transcription import (  # noqa: F401
    api_detail,
    client,
    ready_video,
    runner_token,
)

pytestmark = [pytest.mark.e2e, pytest.mark.ffmpeg, pytest.mark.speech]


def job_of(track) -> RunnerJob:
    return RunnerJob.objects.get(uuid=track.job_uuid)


def transcoded_state(video) -> int:
    """The library's state of the served version (the transcoding outcome's claim)."""
    return TranscodedVideo.objects.get(directory=video.output_prefix(video.active_stamp)).state


def watchdog() -> dict:
    """The watchdog's counts (exit 2, "a human should look", is allowed: a job errored)."""
    out = StringIO()
    try:
        call_command("runners_watchdog", "--json", stdout=out)
    except CommandError as err:
        assert err.returncode == 2, err
    return json.loads(out.getvalue())


def transcriber(live_server_url, runner_token, tmp_path, name="whisper"):  # noqa: F811
    return client(live_server_url, runner_token, tmp_path, name, job_types=[TRANSCRIPTION_JOB])


def assert_ready(track):
    track.refresh_from_db()
    assert (track.state, track.language, track.error_reason) == (SubtitleState.READY, "en", "")


def assert_transcribe_again(video):
    """The error is final: a new transcription is allowed and gets its own pending track."""
    again = video_transcribe(video=video)
    assert again.state == SubtitleState.PENDING
    return again


def test_cancelling_a_pending_job_fails_its_track_and_allows_transcribe_again(
    ready_video,  # noqa: F811
):
    published = transcoded_state(ready_video)
    track = video_transcribe(video=ready_video)
    assert runner_job_cancel(job=job_of(track)) == "cancelled"

    track.refresh_from_db()
    assert (track.state, track.error_reason) == (
        SubtitleState.ERROR,
        "The transcription job was cancelled.",
    )
    assert transcoded_state(ready_video) == published, "the transcoding outcome is untouched"
    assert_transcribe_again(ready_video)
    # The API lists both, with their state (the failed one's reason).
    detail = api_detail(ready_video)
    assert detail["subtitles"] == [
        {
            "language": None,
            "state": "error",
            "error_reason": "The transcription job was cancelled.",
        },
        {"language": None, "state": "pending", "error_reason": ""},
    ]


def test_cancelling_a_processing_job_fails_its_track_and_the_runner_is_turned_away(
    ready_video,  # noqa: F811
    live_server_url,
    runner_token,  # noqa: F811
    tmp_path,
):
    track = video_transcribe(video=ready_video)
    runner = transcriber(live_server_url, runner_token, tmp_path)
    (available,) = runner.request_jobs()
    job = runner.accept(available["uuid"])
    runner_job_cancel(job=job_of(track))

    response = runner.post(f"jobs/{job['uuid']}/update", json=runner._job_body(job, progress=50))
    assert response.status_code == 404, response.text
    track.refresh_from_db()
    assert (track.state, track.error_reason) == (
        SubtitleState.ERROR,
        "The transcription job was cancelled.",
    )
    again = assert_transcribe_again(ready_video)
    assert runner.run_until_idle(timeout=120, idle=1) == 1
    assert_ready(again)


def test_requeueing_an_errored_job_reopens_its_track_not_the_transcoding(
    ready_video,  # noqa: F811
    live_server_url,
    runner_token,  # noqa: F811
    tmp_path,
    settings,
):
    settings.TRANSCODING_RUNNER_MAX_FAILURE = 1
    published = transcoded_state(ready_video)
    track = video_transcribe(video=ready_video)
    runner = transcriber(live_server_url, runner_token, tmp_path)
    (available,) = runner.request_jobs()
    runner.error(runner.accept(available["uuid"]), "whisper ran out of memory")
    track.refresh_from_db()
    assert (track.state, track.error_reason) == (SubtitleState.ERROR, "whisper ran out of memory")

    assert runner_job_requeue(job=job_of(track)).startswith("requeued (errored)")
    track.refresh_from_db()
    assert (track.state, track.error_reason) == (SubtitleState.PENDING, "")
    assert transcoded_state(ready_video) == published, "a transcription is not a transcoding"

    assert runner.run_until_idle(timeout=120, idle=1) == 1
    assert_ready(track)
    ready_video.refresh_from_db()
    assert list(ready_video.urls["subtitles"]) == ["en"]


def test_a_runner_error_at_the_max_failures_fails_the_track_with_its_message(
    ready_video,  # noqa: F811
    live_server_url,
    runner_token,  # noqa: F811
    tmp_path,
    settings,
):
    settings.TRANSCODING_RUNNER_MAX_FAILURE = 1
    track = video_transcribe(video=ready_video)
    runner = transcriber(live_server_url, runner_token, tmp_path)
    (available,) = runner.request_jobs()
    runner.error(runner.accept(available["uuid"]), "This input file does not contain audio")
    track.refresh_from_db()
    assert (track.state, track.error_reason) == (
        SubtitleState.ERROR,
        "This input file does not contain audio",
    )
    assert_transcribe_again(ready_video)


def test_a_stalled_job_at_the_max_failures_fails_its_track(
    ready_video,  # noqa: F811
    live_server_url,
    runner_token,  # noqa: F811
    tmp_path,
    settings,
):
    settings.TRANSCODING_RUNNER_MAX_FAILURE = 1
    settings.RUNNERS_STALLED_JOB_TIMEOUT = 60
    track = video_transcribe(video=ready_video)
    dead = transcriber(live_server_url, runner_token, tmp_path, "dead")
    (available,) = dead.request_jobs()
    dead.accept(available["uuid"])  # ...and the runner dies
    RunnerJob.objects.filter(uuid=track.job_uuid).update(
        updatedAt=timezone.now() - timedelta(minutes=5)
    )

    assert watchdog()["counts"] == {"stalled_jobs_errored": 1}
    track.refresh_from_db()
    assert track.state == SubtitleState.ERROR
    assert track.error_reason == "The runner sent no update for 60 s (stalled)."
    assert_transcribe_again(ready_video)


@pytest.mark.parametrize("how", ["staff unregister", "runner row gone"])
def test_the_job_of_an_unregistered_runner_goes_to_another_and_its_track_waits(
    ready_video,  # noqa: F811
    live_server_url,
    runner_token,  # noqa: F811
    tmp_path,
    how,
):
    track = video_transcribe(video=ready_video)
    (tmp_path / "leaving").mkdir()
    leaving = RunnerClient(
        live_server_url,
        registration_token="ptrrt-transcription-tests",
        name="leaving",
        job_types=[TRANSCRIPTION_JOB],
        workdir=tmp_path / "leaving",
    )
    (available,) = leaving.request_jobs()
    leaving.accept(available["uuid"])
    runner = Runner.objects.get(name="leaving")
    if how == "staff unregister":
        runner_unregister_staff(runner=runner)
    else:  # the library's cascade (a revoked registration token) leaves the job orphaned
        RunnerJob.objects.filter(uuid=track.job_uuid).update(runner=None)
        assert watchdog()["counts"] == {"orphaned_jobs_requeued": 1}
    assert (job_of(track).state, job_of(track).failures) == (RunnerJobState.PENDING, 0)
    track.refresh_from_db()
    assert track.state == SubtitleState.PENDING

    assert (
        transcriber(live_server_url, runner_token, tmp_path).run_until_idle(timeout=120, idle=1)
        == 1
    )
    assert_ready(track)


def lost_outcome(settings):
    """The host callback of transcriptions does nothing: the outcome is lost (a process
    killed between the job's commit and the callback)."""
    settings.RUNNERS_TRANSCRIPTION_ENDED_CALLBACK = "tests.runners.media.record_outcome"


def test_the_watchdog_applies_a_lost_outcome_and_fails_a_track_whose_job_is_gone(
    ready_video,  # noqa: F811
    live_server_url,
    runner_token,  # noqa: F811
    tmp_path,
    settings,
):
    def watchdog_with_outcomes():
        settings.RUNNERS_TRANSCRIPTION_ENDED_CALLBACK = (
            "marsha_runner.operations.transcription.video_transcription_ended"
        )
        return watchdog()["counts"]

    lost_outcome(settings)
    gone = video_transcribe(video=ready_video)
    runner_job_cancel(job=job_of(gone))  # told to nobody...
    RunnerJob.objects.filter(uuid=gone.job_uuid).delete()  # ...and deleted (a cascade)
    gone.refresh_from_db()
    assert gone.state == SubtitleState.PENDING
    with pytest.raises(TranscriptionRefused, match="already running"):
        video_transcribe(video=ready_video)

    assert watchdog_with_outcomes() == {"subtitle_tracks_concluded": 1}
    gone.refresh_from_db()
    assert (gone.state, gone.error_reason) == (
        SubtitleState.ERROR,
        "The transcription job is gone (deleted or pruned).",
    )

    lost_outcome(settings)
    track = assert_transcribe_again(ready_video)
    runner = transcriber(live_server_url, runner_token, tmp_path)
    assert runner.run_until_idle(timeout=120, idle=1) == 1
    track.refresh_from_db()
    assert track.state == SubtitleState.PENDING  # the outcome never came
    assert watchdog_with_outcomes() == {"subtitle_tracks_concluded": 1}
    assert_ready(track)
    assert watchdog()["counts"] == {}, "a second run changes nothing"


def test_pruning_applies_the_outcome_of_a_job_before_deleting_it(
    ready_video,  # noqa: F811
    live_server_url,
    runner_token,  # noqa: F811
    tmp_path,
    settings,
):
    lost_outcome(settings)
    track = video_transcribe(video=ready_video)
    transcriber(live_server_url, runner_token, tmp_path).run_until_idle(timeout=120, idle=1)
    settings.RUNNERS_TRANSCRIPTION_ENDED_CALLBACK = (
        "marsha_runner.operations.transcription.video_transcription_ended"
    )
    settings.RUNNER_JOBS_RETENTION_DAYS = 1
    RunnerJob.objects.update(updatedAt=timezone.now() - timedelta(days=2))
    # A newer version is served: the old version's jobs are prunable.
    newer = ready_video.active_stamp + 3600
    Video.objects.filter(pk=ready_video.pk).update(
        uploaded_on=Video.stamp_to_datetime(newer), processing_stamp=newer, launched_stamp=newer
    )

    out = StringIO()
    call_command("prune_runner_jobs", "--json", stdout=out)
    summary = json.loads(out.getvalue())
    assert summary["counts"]["subtitle_tracks_concluded"] == 1
    assert summary["counts"]["jobs_deleted"] >= 2
    assert not RunnerJob.objects.filter(uuid=track.job_uuid).exists()
    assert_ready(track)
