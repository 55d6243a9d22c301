"""A launch, on the production path (videos.launch): the job tree, the fps fix, small inputs,
atomicity, refusals; and a real runner."""

import json
import subprocess

import pytest
from django_peertube_runner_connector.models import (
    RunnerJob,
    RunnerJobState,
    Video,
    VideoFile,
    VideoJobInfo,
)

from marsha_runner.runners import probe, socket, sources, transcoding
from marsha_runner.videos.constants import UploadState
from tests.runners.media import OUTCOMES, hls_rendition, upload_launched

pytestmark = [pytest.mark.ffmpeg, pytest.mark.django_db]


def _tree_of(host, stamp):
    """The uuid of the library's transcoded video of ``host``'s version ``stamp``."""
    return str(Video.objects.get(directory=host.output_prefix(stamp)).uuid)


def _ladder(video_uuid):
    jobs = RunnerJob.objects.filter(privatePayload__videoUUID=video_uuid)
    return sorted(
        (
            j.payload["output"]["resolution"],
            j.payload["output"]["fps"],
            j.state,
            bool(j.dependsOnRunnerJob_id),
        )
        for j in jobs
    )


def test_720p_30fps_every_rendition_keeps_30fps(
    videos_root, django_capture_on_commit_callbacks, monkeypatch
):
    pings = []
    monkeypatch.setattr(socket, "runners_ping", lambda: pings.append(1))
    with django_capture_on_commit_callbacks() as callbacks:
        host = upload_launched(videos_root, stamp=100, width=1280, height=720, fps=30)
        assert pings == []  # never before the commit: the runner would find nothing
    video_uuid = _tree_of(host, 100)
    prefix = host.output_prefix(100)
    # The first rung (480p, TRANSCODING_FIRST_RESOLUTION) alone, the others waiting for it
    # (issue 18: TRANSCODING_LADDER_WAITS_FOR_FIRST, measured by bench/scheduling.py).
    assert _ladder(video_uuid) == [
        (240, 30, RunnerJobState.WAITING_FOR_PARENT_JOB, True),
        (360, 30, RunnerJobState.WAITING_FOR_PARENT_JOB, True),
        (480, 30, RunnerJobState.PENDING, False),
        (720, 30, RunnerJobState.WAITING_FOR_PARENT_JOB, True),
    ]
    video = Video.objects.get(uuid=video_uuid)
    assert (video.directory, video.baseFilename, video.duration) == (prefix, "100", 2)
    assert video.thumbnailFilename == host.thumbnail_key(100)
    assert (videos_root / host.thumbnail_key(100)).stat().st_size > 0
    source = VideoFile.objects.get(video=video)
    assert (source.filename, source.extname, source.resolution) == (host.source_key(100), "", 720)
    assert (host.launched_stamp, host.duration) == (100, 2.0)
    assert VideoJobInfo.objects.get(video=video).pendingTranscode == 4
    assert len(callbacks) == 1
    callbacks[0]()
    assert pings == [1]  # one ping, on commit


def test_1080p_50fps_keeps_50_where_the_rules_allow(videos_root):
    host = upload_launched(videos_root, stamp=1, width=1920, height=1080, fps=50, seconds=1)
    video_uuid = _tree_of(host, 1)
    got = [(r, fps) for r, fps, _, _ in _ladder(video_uuid)]
    # >= KEEP_ORIGIN_FPS_RESOLUTION_MIN (720) keep 50; below, the closest standard (25).
    assert got == [(240, 25), (360, 25), (480, 25), (720, 50), (1080, 50)]


def test_input_above_the_top_resolution_goes_down_to_it(videos_root, settings):
    settings.TRANSCODING_RESOLUTIONS_1080P = False
    host = upload_launched(videos_root, stamp=1, width=1920, height=1080, fps=30, seconds=1)
    video_uuid = _tree_of(host, 1)
    assert [r for r, *_ in _ladder(video_uuid)] == [240, 360, 480, 720]


def test_input_under_the_lowest_resolution_gives_one_rendition(videos_root):
    host = upload_launched(videos_root, stamp=1, width=178, height=100, fps=30, seconds=1)
    video_uuid = _tree_of(host, 1)
    assert _ladder(video_uuid) == [(100, 30, RunnerJobState.PENDING, False)]


def test_audio_only_is_refused(videos_root, tmp_path):
    def sine(target):
        args = ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=duration=1", "-f", "mp4"]
        subprocess.run([*args, str(target)], check=True)

    host = upload_launched(videos_root, stamp=1, write=sine)
    assert host.upload_state == UploadState.ERROR
    assert host.upload_error_code == "no_video_stream"
    assert host.upload_error_detail == "no video stream found (an audio file, or images only)"
    assert host.launched_stamp is None
    assert not Video.objects.exists()


def test_text_file_is_unreadable(videos_root):
    host = upload_launched(videos_root, stamp=1, write=lambda target: target.write_text("text"))
    assert host.upload_state == UploadState.ERROR
    assert host.upload_error_code == "unreadable_container"
    assert host.upload_error_detail.startswith("unreadable container: ")
    assert "Invalid data found" in host.upload_error_detail
    with pytest.raises(transcoding.SourceUnreadable, match="No such file or directory"):
        transcoding.transcoding_probe(source_key="tmp/v6/video/missing")
    assert not Video.objects.exists()


def test_failure_midway_leaves_no_rows(videos_root, monkeypatch):
    """Force the third job creation to fail: no Video, VideoFile, job or job info remains."""
    from marsha_runner.runners import handlers

    original = handlers.HLSTranscodingJobHandler.create_runner_job
    calls = []

    def failing(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("database went away")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(handlers.HLSTranscodingJobHandler, "create_runner_job", failing)
    host = upload_launched(videos_root, stamp=1, fps=30, seconds=1)
    assert len(calls) == 3
    assert host.upload_state == UploadState.ERROR
    assert host.upload_error_code == "launch_failed"
    assert host.upload_error_detail == (
        "the transcoding could not be started: RuntimeError: database went away"
    )
    assert host.launched_stamp is None
    assert not Video.objects.exists()
    assert not VideoFile.objects.exists()
    assert not RunnerJob.objects.exists()
    assert not VideoJobInfo.objects.exists()
    assert not (videos_root / host.thumbnail_key(1)).exists()


@pytest.mark.e2e
def test_a_real_runner_transcodes_every_rendition(videos_root, live_server_url, settings):
    """Job tree → runner client over uvicorn + socket.io → stored renditions, one outcome."""
    from marsha_runner.devrunner.client import RunnerClient
    from marsha_runner.runners.tokens import runner_seed

    settings.RUNNERS_TRANSCODING_ENDED_CALLBACK = "tests.runners.media.record_outcome"
    settings.TRANSCODING_RESOLUTIONS_480P = False
    OUTCOMES.clear()
    runner_seed(registration_token="ptrrt-e2e", runner_name="e2e", runner_token="ptrt-e2e")
    client = RunnerClient(live_server_url, "ptrt-e2e")
    client.connect()
    host = upload_launched(videos_root, stamp=7, width=1280, height=720, fps=30, seconds=2)
    key, prefix = host.source_key(7), host.output_prefix(7)
    assert client.wait_ping(10), "no available-jobs ping after commit"
    assert client.run_until_idle(timeout=120) == 3
    assert client.ffmpeg_seconds > 0
    dest = videos_root / prefix
    for res in (240, 360, 720):
        playlist = (dest / f"7-{res}.m3u8").read_text()
        assert f'URI="7-{res}-fragmented.mp4"' in playlist
        probe = json.loads(
            subprocess.run(
                [
                    "ffprobe",
                    "-v",
                    "error",
                    "-show_streams",
                    "-of",
                    "json",
                    str(dest / f"7-{res}-fragmented.mp4"),
                ],
                capture_output=True,
                check=True,
            ).stdout
        )
        video = next(s for s in probe["streams"] if s["codec_type"] == "video")
        assert (video["height"], video["r_frame_rate"]) == (res, "30/1")
    master = (dest / "master.m3u8").read_text()
    assert master.count("#EXT-X-STREAM-INF") == 3
    assert "RESOLUTION=1280x720,FRAME-RATE=30" in master and 'CODECS="avc1.64' in master
    decoded = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(dest / "master.m3u8"), "-f", "null", "-"],
        capture_output=True,
    )
    assert decoded.returncode == 0, decoded.stderr
    assert len(OUTCOMES) == 1, OUTCOMES  # one transcoding, one call to the host
    outcome = OUTCOMES[0]
    assert outcome.succeeded and outcome.error is None
    assert outcome.resolutions == [240, 360, 720]
    assert outcome.video_keys[720] == host.rendition_video_key(7, 720)
    assert outcome.playlist_keys[240] == host.rendition_playlist_key(7, 240)
    assert outcome.master_playlist_key == host.master_playlist_key(7)
    assert outcome.thumbnail_key == host.thumbnail_key(7)
    sources.transcoding_release_source(destination=prefix)
    assert not (videos_root / key).exists()


# --- The job tree's life: failures, aborts, completion (through the hardened API) --------------

JOBS = "/api/v1/runners/jobs"


def _accept(client, job, token):
    response = client.post(
        f"{JOBS}/{job.uuid}/accept", {"runnerToken": token}, content_type="application/json"
    )
    assert response.status_code == 200
    return response.json()["job"]["jobToken"]


def _send(client, job, call, token, job_token, **extra):
    body = {"runnerToken": token, "jobToken": job_token, **extra}
    return client.post(f"{JOBS}/{job.uuid}/{call}", body, content_type="application/json")


def test_parent_failing_for_good_leaves_children_parent_errored(
    client, settings, django_capture_on_commit_callbacks
):
    from tests.runners.factories import job_tree, runner_make

    settings.TRANSCODING_RUNNER_MAX_FAILURE = 2
    settings.RUNNERS_TRANSCODING_ENDED_CALLBACK = "tests.runners.media.record_outcome"
    OUTCOMES.clear()
    token = runner_make("r1")
    _, parent, children = job_tree(resolutions=(720, 480, 240))

    job_token = _accept(client, parent, token)
    with django_capture_on_commit_callbacks(execute=True):
        assert _send(client, parent, "error", token, job_token, message="x").status_code == 204
    parent.refresh_from_db()
    assert (parent.state, parent.failures) == (RunnerJobState.PENDING, 1)
    assert {c.state for c in RunnerJob.objects.filter(dependsOnRunnerJob=parent)} == {
        RunnerJobState.WAITING_FOR_PARENT_JOB
    }
    assert OUTCOMES == []  # not over: the parent waits for another try

    job_token = _accept(client, parent, token)
    with django_capture_on_commit_callbacks(execute=True):
        assert _send(client, parent, "error", token, job_token, message="bad").status_code == 204
    parent.refresh_from_db()
    assert (parent.state, parent.failures, parent.error) == (RunnerJobState.ERRORED, 2, "bad")
    for child in children:
        child.refresh_from_db()
        assert child.state == RunnerJobState.PARENT_ERRORED
    assert len(OUTCOMES) == 1 and not OUTCOMES[-1].succeeded
    assert "bad" in OUTCOMES[-1].error and OUTCOMES[-1].resolutions == []


def test_abort_counts_toward_max_failures(client, settings):
    from tests.runners.factories import job_tree, runner_make

    settings.TRANSCODING_RUNNER_MAX_FAILURE = 2
    token = runner_make("r2")
    _, parent, children = job_tree()
    job_token = _accept(client, parent, token)
    assert _send(client, parent, "abort", token, job_token, reason="shutdown").status_code == 204
    parent.refresh_from_db()
    assert (parent.state, parent.failures, parent.processingJobToken) == (
        RunnerJobState.PENDING,
        1,
        None,
    )
    job_token = _accept(client, parent, token)
    assert _send(client, parent, "abort", token, job_token, reason="again").status_code == 204
    parent.refresh_from_db()
    assert (parent.state, parent.failures) == (RunnerJobState.ERRORED, 2)
    children[0].refresh_from_db()
    assert children[0].state == RunnerJobState.PARENT_ERRORED


def test_completion_failure_leaves_children_parent_errored(
    client, videos_root, tmp_path, monkeypatch
):
    """A result that passed the check but fails at completion (here the probe of the stored
    rendition) errors the job, and its children with it."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from marsha_runner.runners import handlers
    from tests.runners.factories import job_tree, runner_make

    def probe_fails(**kwargs):
        raise probe.ProbeFailed("ffprobe failed (exit 1).")

    monkeypatch.setattr(handlers, "probe_stored", probe_fails)
    token = runner_make("r3")
    _, parent, children = job_tree(resolutions=(240, 144))
    mp4, m3u8 = hls_rendition(tmp_path)
    job_token = _accept(client, parent, token)
    data = {
        "runnerToken": token,
        "jobToken": job_token,
        "payload[videoFile]": SimpleUploadedFile(mp4.name, mp4.read_bytes()),
        "payload[resolutionPlaylistFile]": SimpleUploadedFile(m3u8.name, m3u8.read_bytes()),
    }
    assert client.post(f"{JOBS}/{parent.uuid}/success", data).status_code == 204
    parent.refresh_from_db()
    assert parent.state == RunnerJobState.ERRORED
    assert parent.error.startswith("Completion failed")
    children[0].refresh_from_db()
    assert children[0].state == RunnerJobState.PARENT_ERRORED
    assert not VideoFile.objects.filter(streamingPlaylist__isnull=False).exists()


@pytest.mark.parametrize("strip", ["size", "profile", "both"])
def test_probe_without_size_or_profile_keeps_the_rendition(
    client, videos_root, tmp_path, monkeypatch, strip, django_capture_on_commit_callbacks
):
    """Marsha #2761: a probe without format.size / profile used to lose the rendition."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tests.runners.factories import job_tree, runner_make

    real = probe.ffprobe

    def stripped(url):
        probe = real(url)
        if strip in ("size", "both"):
            probe["format"].pop("size", None)
        if strip in ("profile", "both"):
            for stream in probe["streams"]:
                if stream["codec_type"] == "video":
                    stream.pop("profile", None)
        return probe

    monkeypatch.setattr(probe, "ffprobe", stripped)
    token = runner_make("r4")
    video, parent, children = job_tree(resolutions=(240,))
    mp4, m3u8 = hls_rendition(tmp_path)
    job_token = _accept(client, parent, token)
    data = {
        "runnerToken": token,
        "jobToken": job_token,
        "payload[videoFile]": SimpleUploadedFile(mp4.name, mp4.read_bytes()),
        "payload[resolutionPlaylistFile]": SimpleUploadedFile(m3u8.name, m3u8.read_bytes()),
    }
    with django_capture_on_commit_callbacks(execute=True):  # the master is written at the end
        assert client.post(f"{JOBS}/{parent.uuid}/success", data).status_code == 204
    parent.refresh_from_db()
    assert parent.state == RunnerJobState.COMPLETED, parent.error
    stored = VideoFile.objects.get(video=video, streamingPlaylist__isnull=False)
    assert stored.filename == "vod/abc/video/1/1-240-fragmented.mp4"
    assert stored.size == mp4.stat().st_size
    playlist = (videos_root / "vod/abc/video/1/1-240.m3u8").read_text()
    assert 'URI="1-240-fragmented.mp4"' in playlist and mp4.name not in playlist
    master = (videos_root / "vod/abc/video/1/master.m3u8").read_text()
    assert "RESOLUTION=426x240,FRAME-RATE=30" in master and "1-240.m3u8" in master
    assert 'CODECS="avc1.64' in master  # High, read from the avcC box without a profile
