"""Upload → PeerTube runner → ready, over a real uvicorn server, twice: filesystem and S3.

Nothing is mocked: the API is called over HTTP with a JWT, the file is posted to the upload URL
the API hands out (our endpoint, or a SeaweedFS presigned POST), the runner client speaks the
real protocol (socket.io WebSocket, request, accept, download, update, multipart success) and
transcodes with ffmpeg. Prints the time from upload-ended to ready and the runner's ffmpeg time.
"""

import json
import logging
import subprocess
import time

import pytest
import requests
from django.conf import settings
from django.core.files.storage import storages

from marsha_runner.devrunner.client import RunnerClient
from marsha_runner.videos.constants import StorageLocation, TranscodePipeline, UploadState
from marsha_runner.videos.models import Video
from tests.conftest import public_read
from tests.videos.media import make_clip

pytestmark = [pytest.mark.e2e, pytest.mark.ffmpeg]

ALL_RESOLUTIONS = (144, 240, 360, 480, 720, 1080, 1440, 2160)


def enabled_ladder_up_to(top: int) -> list[int]:
    return [
        r
        for r in ALL_RESOLUTIONS
        if r <= top and getattr(settings, f"TRANSCODING_RESOLUTIONS_{r}P")
    ]


def ffprobe(url: str) -> dict:
    done = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-of", "json", url],
        capture_output=True,
        timeout=60,
        check=True,
    )
    return json.loads(done.stdout)


def run_upload_to_ready(base_url, session, tmp_path, runner_token, caplog, clip=None):
    """The whole client flow (a 720p clip unless ``clip`` is given); returns (video json,
    source key)."""
    caplog.set_level(logging.INFO, logger="marsha_runner.videos")
    api = f"{base_url}/api/videos"
    clip = clip or make_clip(tmp_path / "clip.mp4", height=720, fps=30, seconds=3)

    created = session.post(f"{api}/", json={"title": "End to end"}, timeout=30)
    assert created.status_code == 201, created.text
    video_id = created.json()["id"]

    initiated = session.post(
        f"{api}/{video_id}/initiate-upload/",
        json={"filename": "clip.mp4", "mimetype": "video/mp4", "size": clip.stat().st_size},
        timeout=30,
    )
    assert initiated.status_code == 200, initiated.text
    upload = initiated.json()
    with open(clip, "rb") as handle:
        posted = requests.post(
            upload["url"],
            data=upload["fields"],
            files={"file": ("clip.mp4", handle, "video/mp4")},
            timeout=60,
        )
    assert posted.status_code in (200, 201, 204), posted.text

    started = time.time()
    ended = session.post(
        f"{api}/{video_id}/upload-ended/", json={"file_key": upload["fields"]["key"]}, timeout=120
    )
    assert ended.status_code == 200, ended.text
    assert ended.json()["upload_state"] == UploadState.PROCESSING, ended.json()

    (tmp_path / "runner").mkdir()
    runner = RunnerClient(base_url, runner_token, workdir=tmp_path / "runner")
    jobs_done = runner.run_until_idle(timeout=300, idle=3)

    deadline = time.monotonic() + 60
    while True:
        body = session.get(f"{api}/{video_id}/", timeout=30).json()
        if body["upload_state"] in (UploadState.READY, UploadState.ERROR):
            break
        assert time.monotonic() < deadline, f"still {body['upload_state']} after 60 s"
        time.sleep(0.2)
    assert body["upload_state"] == UploadState.READY, body
    # The ready save stamps updated_on: the runner's idle wait is not counted.
    to_ready = Video.objects.get(id=video_id).updated_on.timestamp() - started

    ready_logs = [r for r in caplog.records if ": ready " in r.getMessage()]
    calls = [r for r in caplog.records if "ended again: ignored" in r.getMessage()]
    ffmpeg_seconds = runner.ffmpeg_seconds
    print(
        f"\n[{base_url}] upload-ended → ready: {to_ready:.2f} s; runner ffmpeg: "
        f"{ffmpeg_seconds:.2f} s; server overhead: {to_ready - ffmpeg_seconds:.2f} s;"
        f" jobs: {jobs_done}; extra callback calls ignored: {len(calls)}"
    )
    assert len(ready_logs) == 1  # the callback's side effects happened once
    assert jobs_done == len(body["resolutions"])  # one job per rendition, no duplicate tree
    return body, upload["fields"]["key"]


def check_ready_video(body, absolute, source_key):
    expected = enabled_ladder_up_to(720)
    assert body["resolutions"] == expected
    assert body["transcode_pipeline"] == TranscodePipeline.PEERTUBE
    video = Video.objects.get(id=body["id"])
    assert body["uploaded_on"] is not None
    assert video.active_stamp == video.processing_stamp

    urls = body["urls"]
    assert sorted(int(r) for r in urls["mp4"]) == expected
    for resolution, url in urls["mp4"].items():
        stream = next(s for s in ffprobe(absolute(url))["streams"] if s["codec_type"] == "video")
        assert stream["height"] == int(resolution), (resolution, stream["height"])
        assert stream["avg_frame_rate"] in ("30/1", "30000/1000"), (resolution, stream)

    master = absolute(urls["manifests"]["hls"])
    decoded = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", master, "-f", "null", "-"],
        capture_output=True,
        timeout=120,
    )
    assert decoded.returncode == 0, decoded.stderr.decode(errors="replace")[-800:]

    every_url = [urls["manifests"]["hls"], *urls["mp4"].values(), *urls["thumbnails"].values()]
    assert urls["thumbnails"], "a thumbnail is persisted"
    for url in every_url:
        response = requests.get(absolute(url), headers={"Range": "bytes=0-99"}, timeout=30)
        assert response.status_code in (200, 206), (url, response.status_code)

    assert not storages["videos"].exists(source_key), "the temp source is released"
    return video


def test_upload_to_ready_on_the_filesystem(
    videos_root, live_server_url, seeded_runner_token, jwt_session, tmp_path, caplog
):
    session = jwt_session(live_server_url)
    body, source_key = run_upload_to_ready(
        live_server_url, session, tmp_path, seeded_runner_token, caplog
    )

    def absolute(url):  # filesystem URLs: VIDEOS_URL plus the key, served by the app
        assert url.startswith("/videos/vod/"), url
        assert str(videos_root) not in url, url  # no disk path
        return f"{live_server_url}{url}"

    check_ready_video(body, absolute, source_key)
    assert body["storage_location"] is None  # filesystem: not a bucket
    assert body["urls"]["manifests"]["hls"].split("?v=")[1]  # the cache-buster


@pytest.mark.s3
def test_upload_to_ready_on_s3(
    s3_videos, live_server_url, seeded_runner_token, jwt_session, tmp_path, caplog
):
    # HLS playlists name their children relatively, and a presigned URL signs one object
    # only: players can follow a master playlist only when the outputs are publicly readable
    # (production: a public-read policy on vod/ or a CDN domain). Sources under tmp/ stay
    # private.
    public_read(s3_videos["client"], s3_videos["bucket_name"], "vod/")
    session = jwt_session(live_server_url)
    body, source_key = run_upload_to_ready(
        live_server_url, session, tmp_path, seeded_runner_token, caplog
    )

    def absolute(url):  # plain SeaweedFS URLs: never signed, so they never expire
        assert url.startswith(s3_videos["endpoint_url"]), url
        assert "X-Amz-" not in url, url
        return url

    check_ready_video(body, absolute, source_key)
    assert body["storage_location"] == StorageLocation.SCALEWAY
    unsigned = requests.get(
        f"{s3_videos['endpoint_url']}/{s3_videos['bucket_name']}/{source_key}", timeout=30
    )
    assert unsigned.status_code in (403, 404)  # the source was never public


@pytest.mark.s3
def test_upload_to_ready_on_a_private_bucket(
    s3_videos, settings, live_server_url, seeded_runner_token, jwt_session, tmp_path, caplog
):
    """No public-read policy: the API signs at read, and HLS is served through our playlist
    view whose entries are signed (ffmpeg decodes the master through the URL the API gives)."""
    settings.VIDEOS_SIGN_URLS_AT_READ = True
    settings.VIDEOS_SIGNED_URL_EXPIRE = 600
    session = jwt_session(live_server_url)
    body, source_key = run_upload_to_ready(
        live_server_url, session, tmp_path, seeded_runner_token, caplog
    )

    def absolute(url):
        if url.startswith("/api/videos/"):  # the HLS playlists: our view, a token in the path
            return f"{live_server_url}{url}"
        assert url.startswith(s3_videos["endpoint_url"]), url
        assert "X-Amz-Signature" in url, url
        return url

    video = check_ready_video(body, absolute, source_key)
    assert body["urls"]["manifests"]["hls"].startswith(f"/api/videos/{video.id}/hls/")
    for persisted in [video.urls["manifests"]["hls"], *video.urls["mp4"].values()]:
        assert "X-Amz-" not in persisted
        assert requests.get(persisted, timeout=30).status_code == 403  # the bucket is private
