"""transcoding_start: the job tree, the fps fix, small inputs, atomicity; and a real runner."""

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

from marsha_runner.runners import services
from tests.runners.media import OUTCOMES, store_clip

pytestmark = [pytest.mark.ffmpeg, pytest.mark.django_db]


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


def test_720p_30fps_every_rendition_keeps_30fps(videos_root, django_capture_on_commit_callbacks):
    key = store_clip(videos_root, "tmp/v1/video/100", width=1280, height=720, fps=30)
    with django_capture_on_commit_callbacks() as callbacks:
        video_uuid = services.transcoding_start(
            source_key=key, destination="vod/v1/video/100", base_name="100"
        )
    assert _ladder(video_uuid) == [
        (240, 30, RunnerJobState.WAITING_FOR_PARENT_JOB, True),
        (360, 30, RunnerJobState.WAITING_FOR_PARENT_JOB, True),
        (480, 30, RunnerJobState.WAITING_FOR_PARENT_JOB, True),
        (720, 30, RunnerJobState.PENDING, False),
    ]
    video = Video.objects.get(uuid=video_uuid)
    assert (video.directory, video.baseFilename, video.duration) == ("vod/v1/video/100", "100", 2)
    assert video.thumbnailFilename == "vod/v1/video/100/thumbnail.jpg"
    assert (videos_root / "vod/v1/video/100/thumbnail.jpg").stat().st_size > 0
    source = VideoFile.objects.get(video=video)
    assert (source.filename, source.extname, source.resolution) == (key, "", 720)
    assert VideoJobInfo.objects.get(video=video).pendingTranscode == 4
    assert len(callbacks) == 1  # the ping, after commit only


def test_1080p_50fps_keeps_50_where_the_rules_allow(videos_root):
    key = store_clip(videos_root, "tmp/v2/video/1", width=1920, height=1080, fps=50, seconds=1)
    video_uuid = services.transcoding_start(
        source_key=key, destination="vod/v2/video/1", base_name="1"
    )
    got = [(r, fps) for r, fps, _, _ in _ladder(video_uuid)]
    # >= KEEP_ORIGIN_FPS_RESOLUTION_MIN (720) keep 50; below, the closest standard (25).
    assert got == [(240, 25), (360, 25), (480, 25), (720, 50), (1080, 50)]


def test_input_above_the_top_resolution_goes_down_to_it(videos_root, settings):
    settings.TRANSCODING_RESOLUTIONS_1080P = False
    key = store_clip(videos_root, "tmp/v3/video/1", width=1920, height=1080, fps=30, seconds=1)
    video_uuid = services.transcoding_start(
        source_key=key, destination="vod/v3/video/1", base_name="1"
    )
    assert [r for r, *_ in _ladder(video_uuid)] == [240, 360, 480, 720]


def test_input_under_the_lowest_resolution_gives_one_rendition(videos_root):
    key = store_clip(videos_root, "tmp/v4/video/1", width=178, height=100, fps=30, seconds=1)
    video_uuid = services.transcoding_start(
        source_key=key, destination="vod/v4/video/1", base_name="1"
    )
    assert _ladder(video_uuid) == [(100, 30, RunnerJobState.PENDING, False)]


def test_audio_only_is_refused(videos_root, tmp_path):
    target = videos_root / "tmp/v5/video/1"
    target.parent.mkdir(parents=True)
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "sine=duration=1",
            "-f",
            "mp4",
            str(target),
        ],
        check=True,
    )
    with pytest.raises(services.SourceRefused, match="no video stream"):
        services.transcoding_start(
            source_key="tmp/v5/video/1", destination="vod/v5/video/1", base_name="1"
        )
    assert not Video.objects.exists()


def test_text_file_is_unreadable(videos_root):
    target = videos_root / "tmp/v6/video/1"
    target.parent.mkdir(parents=True)
    target.write_text("not a video")
    with pytest.raises(services.SourceUnreadable):
        services.transcoding_start(
            source_key="tmp/v6/video/1", destination="vod/v6/video/1", base_name="1"
        )
    with pytest.raises(services.SourceUnreadable):
        services.transcoding_probe(source_key="tmp/v6/video/missing")
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
    key = store_clip(videos_root, "tmp/v7/video/1", fps=30, seconds=1)
    with pytest.raises(RuntimeError, match="went away"):
        services.transcoding_start(source_key=key, destination="vod/v7/video/1", base_name="1")
    assert len(calls) == 3
    assert not Video.objects.exists()
    assert not VideoFile.objects.exists()
    assert not RunnerJob.objects.exists()
    assert not VideoJobInfo.objects.exists()
    assert not (videos_root / "vod/v7/video/1/thumbnail.jpg").exists()


@pytest.mark.e2e
def test_a_real_runner_transcodes_every_rendition(videos_root, live_server_url, settings):
    """Job tree → runner client over uvicorn + socket.io → stored renditions, one outcome."""
    from marsha_runner.runners.services import runner_seed
    from tests.runner_client import RunnerClient

    settings.RUNNERS_TRANSCODING_ENDED_CALLBACK = "tests.runners.media.record_outcome"
    settings.TRANSCODING_RESOLUTIONS_480P = False
    OUTCOMES.clear()
    runner_seed(registration_token="ptrrt-e2e", runner_name="e2e", runner_token="ptrt-e2e")
    key = store_clip(videos_root, "tmp/v8/video/7", width=1280, height=720, fps=30, seconds=2)
    client = RunnerClient(live_server_url, "ptrt-e2e")
    client.connect()
    services.transcoding_start(source_key=key, destination="vod/v8/video/7", base_name="7")
    assert client.wait_ping(10), "no available-jobs ping after commit"
    assert client.run_until_idle(timeout=120) == 3
    assert client.ffmpeg_seconds > 0
    dest = videos_root / "vod/v8/video/7"
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
    assert OUTCOMES and all(o == OUTCOMES[0] for o in OUTCOMES)
    outcome = OUTCOMES[0]
    assert outcome.succeeded and outcome.error is None
    assert outcome.resolutions == [240, 360, 720]
    assert outcome.video_keys[720] == "vod/v8/video/7/7-720-fragmented.mp4"
    assert outcome.playlist_keys[240] == "vod/v8/video/7/7-240.m3u8"
    assert outcome.master_playlist_key == "vod/v8/video/7/master.m3u8"
    assert outcome.thumbnail_key == "vod/v8/video/7/thumbnail.jpg"
    services.transcoding_release_source(destination="vod/v8/video/7")
    assert not (videos_root / key).exists()
