"""Playable after the first rendition (issue 18, points 1 and 2), with the dev runner.

A 2 s 480p upload (ladder 480/360/240), the first rung 360p: the dev runner does the jobs one
at a time. After the first one the video is still ``processing`` but ``playable`` (API and
websocket), its URLs are there and the master playlist lists the one stored rendition; each
next rendition joins the master; ``ready`` when the ladder is complete. A ready video uploaded
again keeps serving its complete version until the new ladder is complete.
"""

import json
import os
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django.contrib.auth.models import User
from rest_framework_simplejwt.tokens import AccessToken
from websockets.sync.client import connect

from marsha_runner.devrunner.client import RunnerClient
from marsha_runner.runners.priority import JobPriority
from marsha_runner.runners.selectors import runner_jobs_of_destination
from marsha_runner.videos.models import Video
from marsha_runner.videos.staff_transcoding import video_retranscode
from tests.videos.media import make_clip

pytestmark = [pytest.mark.e2e, pytest.mark.ffmpeg, pytest.mark.redis]


@pytest.fixture
def redis_channel_layer(settings):
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [os.environ["REDIS_URL"]]},
        }
    }


def _upload(session, api, clip) -> str:
    video_id = session.post(f"{api}/", json={"title": "playable"}, timeout=30).json()["id"]
    return _upload_again(session, api, clip, video_id)


def _upload_again(session, api, clip, video_id) -> str:
    upload = session.post(
        f"{api}/{video_id}/initiate-upload/",
        json={"filename": "clip.mp4", "mimetype": "video/mp4", "size": clip.stat().st_size},
        timeout=30,
    ).json()
    with open(clip, "rb") as handle:
        posted = requests.post(
            upload["url"],
            data=upload["fields"],
            files={"file": ("clip.mp4", handle, "video/mp4")},
            timeout=60,
        )
    assert posted.status_code in (200, 201, 204), posted.text
    ended = session.post(
        f"{api}/{video_id}/upload-ended/", json={"file_key": upload["fields"]["key"]}, timeout=120
    )
    assert ended.status_code == 200, ended.text
    assert ended.json()["upload_state"] == "processing"
    return video_id


def _one_job(runner) -> dict:
    """The dev runner's own check (first job of its list), the job done to the end."""
    in_flight = {}
    with ThreadPoolExecutor(1) as pool:
        runner.check_available_jobs(pool, in_flight)
        assert len(in_flight) == 1, "no job taken"
        ((future, job),) = in_flight.items()
        assert future.result() is True, runner.failed
    return job


def _master_renditions(videos_root, video, stamp) -> list[str]:
    text = (videos_root / video.master_playlist_key(stamp)).read_text()
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def _states(ws) -> list[dict]:
    """Every message the websocket has for us within a short wait."""
    messages = []
    while True:
        try:
            messages.append(json.loads(ws.recv(timeout=2)))
        except TimeoutError:
            return messages


def test_playable_from_the_first_rendition_then_ready(
    videos_root, live_server_url, jwt_session, seeded_runner_token, settings, tmp_path,
    redis_channel_layer,
):  # fmt: skip
    settings.TRANSCODING_FIRST_RESOLUTION = 360
    settings.TRANSCODING_LADDER_WAITS_FOR_FIRST = False
    session = jwt_session(live_server_url)
    api = f"{live_server_url}/api/videos"
    clip = make_clip(tmp_path / "clip.mp4", height=480, seconds=2)
    runner = RunnerClient(live_server_url, seeded_runner_token, concurrency=1)

    video_id = _upload(session, api, clip)
    body = session.get(f"{api}/{video_id}/", timeout=30).json()
    assert (body["playable"], body["playable_on"], body["urls"]) == (False, None, None)
    offered = [job["payload"]["output"]["resolution"] for job in runner.request_jobs()]
    assert offered == [360, 480, 240]  # the first rung, then the others, every one pending

    token = str(AccessToken.for_user(User.objects.get(username="uploader")))
    ws_url = live_server_url.replace("http", "ws", 1) + f"/ws/videos/{video_id}/?jwt={token}"
    with connect(ws_url, open_timeout=10) as ws:
        assert _one_job(runner)["payload"]["output"]["resolution"] == 360
        pushed = _states(ws)
    body = session.get(f"{api}/{video_id}/", timeout=30).json()
    assert body["upload_state"] == "processing"
    assert body["playable"] is True and body["playable_on"]
    assert body["resolutions"] == [360]
    assert set(body["urls"]["mp4"]) == {"360"}
    assert body["urls"]["manifests"]["hls"]
    video = Video.objects.get(id=video_id)
    stamp = video.processing_stamp
    assert video.active_stamp == stamp
    assert _master_renditions(videos_root, video, stamp) == [f"{stamp}-360.m3u8"]
    assert [(m["state"], bool(m["playable_on"]), m["resolutions"]) for m in pushed] == [
        ("processing", True, [360])
    ]
    master = requests.get(live_server_url + body["urls"]["manifests"]["hls"], timeout=30)
    assert master.status_code == 200 and f"{stamp}-360.m3u8" in master.text

    assert _one_job(runner)["payload"]["output"]["resolution"] == 480
    assert _master_renditions(videos_root, video, stamp) == [
        f"{stamp}-360.m3u8",
        f"{stamp}-480.m3u8",
    ]
    middle = session.get(f"{api}/{video_id}/", timeout=30).json()
    assert (middle["upload_state"], middle["resolutions"]) == ("processing", [360, 480])
    assert middle["urls"]["manifests"]["hls"] != body["urls"]["manifests"]["hls"]  # buster

    assert _one_job(runner)["payload"]["output"]["resolution"] == 240
    ready = session.get(f"{api}/{video_id}/", timeout=30).json()
    assert (ready["upload_state"], ready["resolutions"]) == ("ready", [240, 360, 480])
    assert ready["playable_on"] == body["playable_on"]  # playable since the first rendition
    assert len(_master_renditions(videos_root, video, stamp)) == 3


def _jobs_by_priority(video, stamp) -> dict:
    jobs = runner_jobs_of_destination(destination=video.output_prefix(stamp))
    return {job.payload["output"]["resolution"]: job.priority for job in jobs}


def test_a_ready_video_uploaded_again_serves_its_complete_version_until_ready(
    videos_root, live_server_url, jwt_session, seeded_runner_token, settings, tmp_path
):
    settings.TRANSCODING_FIRST_RESOLUTION = 240
    settings.TRANSCODING_LADDER_WAITS_FOR_FIRST = False
    session = jwt_session(live_server_url)
    api = f"{live_server_url}/api/videos"
    clip = make_clip(tmp_path / "clip.mp4", height=360, seconds=1)
    runner = RunnerClient(live_server_url, seeded_runner_token, concurrency=1)
    video_id = _upload(session, api, clip)
    first = Video.objects.get(id=video_id).processing_stamp
    assert runner.run_until_idle(timeout=120, idle=1) == 2
    ready = session.get(f"{api}/{video_id}/", timeout=30).json()
    assert (ready["upload_state"], ready["resolutions"]) == ("ready", [240, 360])
    video = Video.objects.get(id=video_id)
    # A user's upload: its first rung before every other upload's rungs, then its ladder.
    assert _jobs_by_priority(video, first) == {
        240: JobPriority.UPLOAD_FIRST,
        360: JobPriority.UPLOAD,
    }

    _upload_again(session, api, clip, video_id)
    assert _one_job(runner)["payload"]["output"]["resolution"] == 240
    meanwhile = session.get(f"{api}/{video_id}/", timeout=30).json()
    assert meanwhile["upload_state"] == "processing"
    for field in ("urls", "resolutions", "uploaded_on", "playable", "playable_on"):
        assert meanwhile[field] == ready[field], field  # the complete version, untouched
    assert runner.run_until_idle(timeout=120, idle=1) == 1
    again = session.get(f"{api}/{video_id}/", timeout=30).json()
    assert (again["upload_state"], again["resolutions"]) == ("ready", [240, 360])
    assert again["uploaded_on"] > ready["uploaded_on"]
    assert again["playable_on"] > ready["playable_on"]  # the new version replaced it now

    # Staff work: its jobs in the STAFF class, whatever rung.
    video_retranscode(video_id=video_id)
    video.refresh_from_db()
    assert video.processing_by_staff is True
    assert set(_jobs_by_priority(video, video.processing_stamp).values()) == {JobPriority.STAFF}
