"""Transcription through the runners, over a real uvicorn server with the dev runner client.

The video speaks (espeak-ng); the runner client downloads the media through the protocol,
transcribes it with faster-whisper (tiny.en) and sends a multipart success like
peertube-runner. Everything is real; the tests of a refused language only override the
language the runner sends (the VTT is still whisper's).
"""

import json
import re
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth.models import Permission, User
from django.core.files.storage import storages
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from django_peertube_runner_connector.models import RunnerJob, RunnerJobState, RunnerJobType
from rest_framework.test import APIClient

from marsha_runner.devrunner.client import HLS_JOB, TRANSCRIPTION_JOB, RunnerClient
from marsha_runner.operations.transcription import TranscriptionRefused, video_transcribe
from marsha_runner.runners.tokens import runner_seed
from marsha_runner.storage import storage_public_url
from marsha_runner.videos import launch, media_urls
from marsha_runner.videos.constants import SubtitleState, UploadState
from marsha_runner.videos.models import SubtitleTrack, Video
from tests.factories import VideoFactory
from tests.speech import assert_transcript, make_spoken_clip, media_seconds

pytestmark = [pytest.mark.e2e, pytest.mark.ffmpeg, pytest.mark.speech]

STAMP = 1767261600


@pytest.fixture
def runner_token(settings):
    return runner_seed(
        registration_token="ptrrt-transcription-tests",
        runner_name="transcriber",
        runner_token="ptrt-transcriber",
    ).runner_token


def client(base_url, token, tmp_path, name, **kwargs):
    workdir = tmp_path / name
    workdir.mkdir()
    return RunnerClient(base_url, token, workdir=workdir, **kwargs)


@pytest.fixture
def ready_video(videos_root, live_server_url, runner_token, tmp_path):
    """A spoken video transcoded for real (one 240p rendition) and ready."""
    video = VideoFactory(upload_state=UploadState.PROCESSING, processing_stamp=STAMP)
    source = videos_root / video.source_key(STAMP)
    source.parent.mkdir(parents=True)
    make_spoken_clip(source)
    video.spoken_seconds = media_seconds(source)
    launch.video_launch_transcoding(video_id=video.id, stamp=STAMP)
    client(live_server_url, runner_token, tmp_path, "hls", job_types=[HLS_JOB]).run_until_idle(
        timeout=120, idle=1
    )
    video.refresh_from_db()
    assert video.upload_state == UploadState.READY, video.upload_error_reason
    return video


def api_detail(video) -> dict:
    """The video as the API shows it to an editor."""
    editor = User.objects.create_user("editor", password="editor-password-1")
    editor.user_permissions.add(
        Permission.objects.get(codename="change_video", content_type__app_label="videos")
    )
    api = APIClient()
    api.force_authenticate(editor)
    return api.get(f"/api/videos/{video.id}/").json()


def transcription_job(track) -> RunnerJob:
    return RunnerJob.objects.get(uuid=track.job_uuid)


def test_success_stores_one_track_shown_in_the_api(
    ready_video, live_server_url, runner_token, tmp_path
):
    track = video_transcribe(video=ready_video)
    assert track.state == SubtitleState.PENDING
    job = transcription_job(track)
    assert (job.type, job.state) == (RunnerJobType.VIDEO_TRANSCRIPTION, RunnerJobState.PENDING)
    with pytest.raises(TranscriptionRefused, match="already running"):
        video_transcribe(video=ready_video)

    runner = client(live_server_url, runner_token, tmp_path, "w", job_types=[TRANSCRIPTION_JOB])
    assert runner.run_until_idle(timeout=60, idle=1) == 1

    track.refresh_from_db()
    assert (track.state, track.language, track.error_reason) == (SubtitleState.READY, "en", "")
    storage = storages["videos"]
    assert track.key == f"{ready_video.output_prefix(STAMP)}/{STAMP}-en.vtt"
    with storage.open(track.key) as handle:
        assert_transcript(handle.read().decode(), spoken_seconds=ready_video.spoken_seconds)
    assert SubtitleTrack.objects.filter(video=ready_video).count() == 1
    # The master offers it: a subtitles group with a WebVTT media playlist of the file.
    prefix, storage = ready_video.output_prefix(STAMP), storages["videos"]
    with storage.open(f"{prefix}/master.m3u8") as handle:
        master = handle.read().decode()
    assert (
        '#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subtitles",NAME="English",LANGUAGE="en",'
        f'DEFAULT=NO,AUTOSELECT=YES,FORCED=NO,URI="{STAMP}-subtitles-en.m3u8"'
    ) in master.splitlines()
    variants = [line for line in master.splitlines() if line.startswith("#EXT-X-STREAM-INF")]
    assert variants and all(line.endswith(',SUBTITLES="subtitles"') for line in variants)
    with storage.open(f"{prefix}/{STAMP}-subtitles-en.m3u8") as handle:
        media = handle.read().decode().splitlines()
    assert media[0] == "#EXTM3U" and media[-1] == "#EXT-X-ENDLIST", media
    assert f"{STAMP}-en.vtt" in media

    ready_video.refresh_from_db()
    url = storage_public_url(storage, track.key)
    assert ready_video.urls["subtitles"] == {"en": url}
    assert ready_video.urls["mp4"], "the other URLs are kept"
    detail = api_detail(ready_video)
    assert detail["urls"]["subtitles"] == {"en": url}
    assert detail["subtitles"] == [{"language": "en", "state": "ready", "error_reason": ""}]

    # A later URL refresh (backfill) keeps the track; a second request is refused.
    media_urls.video_refresh_urls(video=ready_video)
    assert ready_video.urls["subtitles"] == {"en": url}
    with pytest.raises(TranscriptionRefused, match="already has a transcript"):
        video_transcribe(video=ready_video)


@pytest.mark.parametrize(
    ("language", "reason"),
    [("xx", "Unknown transcription language 'xx'."), (None, "no transcription language")],
)
def test_an_unknown_or_missing_language_is_an_error(
    ready_video, live_server_url, runner_token, tmp_path, language, reason
):
    track = video_transcribe(video=ready_video)
    runner = client(
        live_server_url,
        runner_token,
        tmp_path,
        "w",
        job_types=[TRANSCRIPTION_JOB],
        transcript_language=language,
    )
    runner.run_until_idle(timeout=60, idle=1)
    track.refresh_from_db()
    assert track.state == SubtitleState.ERROR
    assert reason in track.error_reason
    job = transcription_job(track)
    assert job.state == RunnerJobState.ERRORED
    assert reason in job.error
    ready_video.refresh_from_db()
    assert "subtitles" not in ready_video.urls
    assert not storages["videos"].exists(f"{ready_video.output_prefix(STAMP)}/{STAMP}-xx.vtt")
    # A failed track does not block a new attempt.
    assert video_transcribe(video=ready_video).state == SubtitleState.PENDING


def test_the_error_callback_marks_the_track_failed_with_the_reason(
    ready_video, live_server_url, runner_token, tmp_path, settings
):
    settings.TRANSCODING_RUNNER_MAX_FAILURE = 2
    track = video_transcribe(video=ready_video)
    runner = client(live_server_url, runner_token, tmp_path, "w", job_types=[TRANSCRIPTION_JOB])
    for attempt in (1, 2):
        (available,) = runner.request_jobs()
        job = runner.accept(available["uuid"])
        runner.error(job, f"whisper crashed ({attempt})")
        track.refresh_from_db()
        if attempt == 1:  # retried first: the track still waits
            assert transcription_job(track).state == RunnerJobState.PENDING
            assert track.state == SubtitleState.PENDING
    assert transcription_job(track).state == RunnerJobState.ERRORED
    assert (track.state, track.error_reason) == (SubtitleState.ERROR, "whisper crashed (2)")


def test_a_transcription_job_whose_runner_died_is_requeued_by_the_watchdog(
    ready_video, live_server_url, runner_token, tmp_path, settings
):
    settings.RUNNERS_STALLED_JOB_TIMEOUT = 60
    track = video_transcribe(video=ready_video)
    dead = client(live_server_url, runner_token, tmp_path, "dead", job_types=[TRANSCRIPTION_JOB])
    (available,) = dead.request_jobs()
    dead.accept(available["uuid"])  # ...and the runner process dies: no update, no abort
    RunnerJob.objects.filter(uuid=track.job_uuid).update(
        updatedAt=timezone.now() - timedelta(minutes=5)
    )

    out = StringIO()
    call_command("runners_watchdog", "--json", stdout=out)
    summary = json.loads(out.getvalue())
    assert summary["counts"] == {"stalled_jobs_requeued": 1}
    job = transcription_job(track)
    assert (job.state, job.failures) == (RunnerJobState.PENDING, 1)

    alive = client(live_server_url, runner_token, tmp_path, "ok", job_types=[TRANSCRIPTION_JOB])
    assert alive.run_until_idle(timeout=60, idle=1) == 1
    track.refresh_from_db()
    assert (track.state, track.language) == (SubtitleState.READY, "en")


def test_transcribe_command(ready_video, settings):
    other = VideoFactory(upload_state=UploadState.PENDING)

    def run(*args):
        out = StringIO()
        try:
            call_command("transcribe", "--json", *args, stdout=out)
        except CommandError as err:
            return (json.loads(out.getvalue()) if out.getvalue() else None), err.returncode
        return json.loads(out.getvalue()), 0

    for bad, message in (
        (["--all", "--limit", "1"], "--limit and --all cannot go together"),
        ([], "Name videos with --video, or give --limit N or --all"),
        (["--video", "nope"], "--video takes video ids"),
        (["--limit", "0"], "--limit must be at least 1"),
    ):
        with pytest.raises(CommandError, match=f"^{re.escape(message)}"):
            call_command("transcribe", *bad)

    summary, code = run("--all", "--dry-run")
    assert (summary["counts"], code) == ({"started": 1}, 0)
    assert not SubtitleTrack.objects.exists()

    summary, code = run("--video", str(ready_video.id), "--video", str(other.id))
    assert code == 2, "a named video was refused"
    assert summary["counts"] == {"started": 1, "refused": 1}
    assert summary["items"]["refused"] == [
        {"video": str(other.id), "reason": "The video is pending, not ready."}
    ]
    assert SubtitleTrack.objects.filter(video=ready_video).count() == 1

    summary, code = run("--all")
    assert (summary["counts"], code) == ({}, 0), "a second run starts nothing"
    assert Video.objects.get(pk=ready_video.pk).upload_state == UploadState.READY
