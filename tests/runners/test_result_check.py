"""A success must deliver what the job asked for (issue 6, item 7).

Real ffmpeg renditions, the real success view; each bad result is refused with 400 while the
job stays processing, no row of the runner tables changes and nothing is written to storage.
The same job then accepts the good files (the control: the check can pass).
"""

import subprocess
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django_peertube_runner_connector.models import (
    Runner,
    RunnerJob,
    RunnerJobState,
    VideoFile,
)

from tests.runners.factories import job_tree, runner_make
from tests.runners.media import make_clip

pytestmark = [pytest.mark.django_db, pytest.mark.ffmpeg]
JOBS = "/api/v1/runners/jobs"


def _rendition(workdir, *, height):
    """<uuid>-<res>-fragmented.mp4 + its byte-range playlist, as peertube-runner sends them."""
    source = workdir / f"src-{height}.mp4"
    make_clip(source, width=height * 16 // 9 // 2 * 2, height=height, seconds=1)
    stem = f"{uuid.uuid4()}-{height}"
    video = workdir / f"{stem}-fragmented.mp4"
    playlist = workdir / f"{stem}.m3u8"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(source), "-c", "copy",
         "-f", "hls", "-hls_playlist_type", "vod", "-hls_segment_type", "fmp4",
         "-hls_flags", "single_file", "-hls_segment_filename", str(video), str(playlist)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return video, playlist


@pytest.fixture(scope="module")
def renditions(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("renditions")
    return {240: _rendition(workdir, height=240), 360: _rendition(workdir, height=360)}


@pytest.fixture
def world(client, videos_root):
    token = runner_make("result-runner")
    _, job, _ = job_tree(resolutions=(240,))
    response = client.post(
        f"{JOBS}/{job.uuid}/accept", {"runnerToken": token}, content_type="application/json"
    )
    assert response.status_code == 200
    return {"token": token, "job": job, "job_token": response.json()["job"]["jobToken"]}


def _files(renditions, *, height=240, video_name=None, video_bytes=None, playlist=None):
    video, m3u8 = renditions[height]
    files = {
        "payload[videoFile]": SimpleUploadedFile(
            video_name or video.name, video.read_bytes() if video_bytes is None else video_bytes
        )
    }
    text = m3u8.read_text()
    if playlist is not None:
        text = playlist(text, video.name)
    if text is not False:
        files["payload[resolutionPlaylistFile]"] = SimpleUploadedFile(
            "playlist.m3u8", text if isinstance(text, bytes) else text.encode()
        )
    return files


def _rows():
    return (
        list(RunnerJob.objects.order_by("pk").values()),
        list(Runner.objects.order_by("pk").values()),
        list(VideoFile.objects.order_by("pk").values()),
    )


def _stored(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


BAD_RESULTS = {
    "text as video": {"video_bytes": b"this is not a video\n" * 50},
    "wrong resolution": {"height": 360},
    "playlist naming ../": {"playlist": lambda text, name: text.replace(name, f"../{name}")},
    "playlist naming a directory": {
        "playlist": lambda text, name: text.replace(name, f"sub/{name}")
    },
    "playlist naming an absolute URL": {
        "playlist": lambda text, name: text.replace(name, f"https://evil.example/{name}")
    },
    "playlist naming an absolute path": {
        "playlist": lambda text, name: text.replace(name, f"/etc/{name}")
    },
    "playlist naming another file": {
        "playlist": lambda text, name: text.replace(name, "other-fragmented.mp4")
    },
    "playlist naming an extra file": {
        "playlist": lambda text, name: text + "#EXTINF:1.0,\nextra-fragmented.mp4\n"
    },
    "playlist naming no file": {"playlist": lambda text, name: "#EXTM3U\n#EXT-X-ENDLIST\n"},
    "playlist not a playlist": {"playlist": lambda text, name: b"\x00\xff binary"},
    "missing playlist": {"playlist": lambda text, name: False},
    "encoded traversal file name": {
        "video_name": "..%2F..%2Fevil-fragmented.mp4",
        "playlist": lambda text, name: text.replace(name, "..%2F..%2Fevil-fragmented.mp4"),
    },
    "hidden file name": {
        "video_name": ".evil-fragmented.mp4",
        "playlist": lambda text, name: text.replace(name, ".evil-fragmented.mp4"),
    },
}


@pytest.mark.parametrize("case", list(BAD_RESULTS))
def test_bad_result_refused_job_unchanged_nothing_stored(
    client, world, renditions, videos_root, case
):
    before, stored = _rows(), _stored(videos_root)
    data = {"runnerToken": world["token"], "jobToken": world["job_token"]}
    data.update(_files(renditions, **BAD_RESULTS[case]))
    response = client.post(f"{JOBS}/{world['job'].uuid}/success", data)
    assert response.status_code == 400, response.content
    assert response.json()["status"] == 400
    assert _rows() == before
    assert RunnerJob.objects.get(pk=world["job"].pk).state == RunnerJobState.PROCESSING
    assert _stored(videos_root) == stored

    # The runner reports the error: the job is retried elsewhere (counted).
    body = {
        **{k: data[k] for k in ("runnerToken", "jobToken")},
        "message": response.json()["detail"],
    }
    response = client.post(
        f"{JOBS}/{world['job'].uuid}/error", body, content_type="application/json"
    )
    assert response.status_code == 204
    job = RunnerJob.objects.get(pk=world["job"].pk)
    assert (job.state, job.failures) == (RunnerJobState.PENDING, 1)


def test_good_result_is_stored(client, world, renditions, videos_root):
    """The control: the same job takes the right files, after a refused attempt."""
    data = {"runnerToken": world["token"], "jobToken": world["job_token"]}
    bad = {**data, **_files(renditions, height=360)}
    assert client.post(f"{JOBS}/{world['job'].uuid}/success", bad).status_code == 400
    good = {**data, **_files(renditions)}
    response = client.post(f"{JOBS}/{world['job'].uuid}/success", good)
    assert response.status_code == 204, response.content
    job = RunnerJob.objects.get(pk=world["job"].pk)
    assert job.state == RunnerJobState.COMPLETED, job.error
    assert (videos_root / "vod/abc/video/1/1-240-fragmented.mp4").exists()
    assert (videos_root / "vod/abc/video/1/1-240.m3u8").exists()


def test_large_upload_on_disk_is_checked_too(client, world, renditions, videos_root, settings):
    """Uploads above FILE_UPLOAD_MAX_MEMORY_SIZE arrive as temporary files: same check."""
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 1024
    data = {"runnerToken": world["token"], "jobToken": world["job_token"]}
    bad = {**data, **_files(renditions, height=360)}
    assert client.post(f"{JOBS}/{world['job'].uuid}/success", bad).status_code == 400
    good = {**data, **_files(renditions)}
    assert client.post(f"{JOBS}/{world['job'].uuid}/success", good).status_code == 204


def test_traversal_file_name_on_the_wire(client, world, renditions, videos_root):
    """A raw multipart naming ``../../`` (Django's test client would strip it): the server keeps
    the bare name, so the playlist naming the traversal no longer names the uploaded file."""
    video, m3u8 = renditions[240]
    evil = "../../evil-fragmented.mp4"
    boundary = "runnerboundary"
    parts = [
        ('name="runnerToken"', world["token"].encode()),
        ('name="jobToken"', world["job_token"].encode()),
        (f'name="payload[videoFile]"; filename="{evil}"', video.read_bytes()),
        (
            'name="payload[resolutionPlaylistFile]"; filename="p.m3u8"',
            m3u8.read_text().replace(video.name, evil).encode(),
        ),
    ]
    body = (
        b"".join(
            f"--{boundary}\r\nContent-Disposition: form-data; {disposition}\r\n\r\n".encode()
            + content
            + b"\r\n"
            for disposition, content in parts
        )
        + f"--{boundary}--\r\n".encode()
    )
    before, stored = _rows(), _stored(videos_root)
    response = client.post(
        f"{JOBS}/{world['job'].uuid}/success",
        body,
        content_type=f"multipart/form-data; boundary={boundary}",
    )
    assert response.status_code == 400, response.content
    assert "outside its directory" in response.json()["detail"]
    assert _rows() == before
    assert _stored(videos_root) == stored


@pytest.mark.parametrize(
    "vtt,status",
    [
        (None, 400),  # PeerTube: a transcription success needs its vttFile
        (b"not a transcript\n", 400),
        (b"\xef\xbb\xbfWEBVTT\n\n00:00:00.000 --> 00:00:01.000\nhi\n", 204),  # the control
    ],
)
def test_transcription_result_is_a_webvtt(client, videos_root, vtt, status):
    """A transcription job of a known runner: a missing or non-WebVTT file is refused with the
    job left processing; a WebVTT goes on to the completion (which may still refuse the
    language: that is the host's decision, not a broken runner's)."""
    token = runner_make("vtt-runner")
    _, parent, _ = job_tree(resolutions=(240,))
    RunnerJob.objects.filter(pk=parent.pk).update(
        type="video-transcription",
        state=RunnerJobState.PROCESSING,
        processingJobToken="ptrjt-vtt",
        runner=Runner.objects.get(name="vtt-runner"),
    )
    data = {"runnerToken": token, "jobToken": "ptrjt-vtt", "payload[inputLanguage]": "en"}
    if vtt is not None:
        data["payload[vttFile]"] = SimpleUploadedFile("en.vtt", vtt)
    before, stored = _rows(), _stored(videos_root)
    response = client.post(f"{JOBS}/{parent.uuid}/success", data)
    assert response.status_code == status, response.content
    if status == 400:
        assert _rows() == before
        assert _stored(videos_root) == stored
    else:
        assert RunnerJob.objects.get(pk=parent.pk).state != RunnerJobState.PROCESSING
