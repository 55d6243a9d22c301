"""Transcode missing renditions (PeerTube #6546): only the missing rungs of the ladder get jobs;
a real runner client does them over uvicorn, and the video is ready again with every rendition.
"""

import subprocess

import pytest
from django.contrib.admin.models import LogEntry
from django.core.files.storage import storages
from django_peertube_runner_connector.models import RunnerJob

from marsha_runner.devrunner.client import HLS_JOB, RunnerClient
from marsha_runner.runners.tokens import runner_seed
from marsha_runner.storage import storage_public_url
from marsha_runner.videos.constants import TranscodePipeline, UploadState
from marsha_runner.videos.models import Video
from tests.factories import VideoFactory
from tests.runners.media import make_clip

from .helpers import action_names, messages_of, post_action, staff_user

pytestmark = [pytest.mark.e2e, pytest.mark.ffmpeg]

STAMP = 1_700_000_000


def stored_rendition(root, video, stamp, height):
    """A rendition as our pipeline stores it: <stamp>-<res>-fragmented.mp4 + its playlist."""
    prefix = root / video.output_prefix(stamp)
    prefix.mkdir(parents=True, exist_ok=True)
    make_clip(prefix / "src.mp4", width=height * 16 // 9 // 2 * 2, height=height, seconds=2)
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(prefix / "src.mp4"), "-c", "copy",
         "-f", "hls", "-hls_playlist_type", "vod", "-hls_segment_type", "fmp4",
         "-hls_flags", "single_file",
         "-hls_segment_filename", str(prefix / f"{stamp}-{height}-fragmented.mp4"),
         str(prefix / f"{stamp}-{height}.m3u8")],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    (prefix / "src.mp4").unlink()


@pytest.fixture
def incomplete(videos_root, live_server_url):
    """A ready video holding only its 360p rendition: its ladder (360p, 240p) lacks 240p."""
    video = VideoFactory(
        title="incomplete", upload_state=UploadState.READY,
        transcode_pipeline=TranscodePipeline.PEERTUBE, resolutions=[360],
        uploaded_on=Video.stamp_to_datetime(STAMP), processing_stamp=STAMP, launched_stamp=STAMP,
    )  # fmt: skip
    stored_rendition(videos_root, video, STAMP, 360)
    video.urls = {"manifests": {"hls": "http://served/master.m3u8"}}
    video.save()
    complete = VideoFactory(
        title="complete", upload_state=UploadState.READY,
        transcode_pipeline=TranscodePipeline.PEERTUBE, resolutions=[240],
        uploaded_on=Video.stamp_to_datetime(STAMP), processing_stamp=STAMP, launched_stamp=STAMP,
    )  # fmt: skip
    stored_rendition(videos_root, complete, STAMP, 240)
    return video, complete


def test_transcode_missing_renditions(client, incomplete, live_server_url, tmp_path):
    video, complete = incomplete
    client.force_login(staff_user("retranscode_video"))
    assert "transcode_missing" not in action_names(client, Video)
    client.force_login(staff_user("transcode_missing_video", username="ops"))

    html = post_action(client, Video, "transcode_missing", [video, complete]).content.decode()
    assert "will get the missing 240p, from its 360p rendition" in html
    assert "skipped: its ladder is complete (240p)" in html
    assert not RunnerJob.objects.exists()

    response = post_action(client, Video, "transcode_missing", [video, complete], confirmed=True)
    assert any("transcoding the missing 240p" in m for m in messages_of(response))
    assert any("1 done, 1 skipped" in m for m in messages_of(response))
    assert list(LogEntry.objects.values_list("object_id", flat=True)) == [str(video.pk)]
    jobs = list(RunnerJob.objects.all())
    assert [job.payload["output"]["resolution"] for job in jobs] == [240]  # the missing only
    video.refresh_from_db()
    assert video.upload_state == UploadState.PROCESSING
    assert video.urls == {"manifests": {"hls": "http://served/master.m3u8"}}  # still served

    token = runner_seed(
        registration_token="ptrrt-missing", runner_name="missing", runner_token="ptrt-missing"
    ).runner_token
    workdir = tmp_path / "runner"
    workdir.mkdir()
    done = RunnerClient(live_server_url, token, workdir=workdir, job_types=[HLS_JOB])
    assert done.run_until_idle(timeout=120, idle=1) == 1

    video.refresh_from_db()
    assert video.upload_state == UploadState.READY, video.upload_error_reason
    assert video.resolutions == [240, 360]
    assert video.uploaded_on == Video.stamp_to_datetime(STAMP)  # the same version, completed
    storage = storages["videos"]
    master = storage.open(video.master_playlist_key(STAMP)).read().decode()
    assert f"{STAMP}-240.m3u8" in master and f"{STAMP}-360.m3u8" in master
    assert storage.exists(video.rendition_video_key(STAMP, 240))
    assert video.urls["manifests"]["hls"].startswith(
        storage_public_url(storage, video.master_playlist_key(STAMP))
    )
    assert set(video.urls["mp4"]) == {"240", "360"}
