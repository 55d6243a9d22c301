"""A Celery broker outage loses no upload (issue 9, point 8).

Measured before the fix: with Redis stopped, upload-ended answered 500 after committing the
video as ``processing``, and the video stayed there for good. Here Redis is real: a
``redis-server`` started for the test on a free port and stopped in it. Celery runs for real
too (not eager): the watchdog's enqueue goes through that Redis to a worker thread.
"""

import logging
import shutil
import subprocess
import time
from io import StringIO
from pathlib import Path

import pytest
import requests
from django.contrib.auth.models import Permission, User
from django.core.management import call_command

from marsha_runner.celery import app as celery_app
from marsha_runner.devrunner.client import RunnerClient
from marsha_runner.runners.tokens import runner_seed
from marsha_runner.videos.constants import UploadState
from marsha_runner.videos.models import Video
from tests.conftest import free_port, port_open, require
from tests.videos.media import make_clip

pytestmark = [pytest.mark.redis, pytest.mark.ffmpeg]


class RedisServer:
    """A throwaway redis-server (no persistence) we can stop and start again on one port."""

    def __init__(self, workdir: Path):
        self.port = free_port()
        self.workdir = workdir
        self.process = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while not port_open("127.0.0.1", self.port):
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)

    def stop(self):
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def redis_server(tmp_path):
    require(bool(shutil.which("redis-server")), "needs redis-server on PATH")
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


def _celery_pools_reset():
    """Forget the connections made for the previous broker URL (Celery and kombu cache them)."""
    from kombu import pools

    pools.reset()
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture
def celery_on(redis_server):
    """Celery configured for real against the test's Redis (not eager); restored after."""
    # The app reads Django settings under the CELERY_ namespace: set the prefixed keys.
    keys = ("CELERY_BROKER_URL", "CELERY_TASK_ALWAYS_EAGER")
    saved = {k: celery_app.conf[k] for k in keys}
    celery_app.conf.update(CELERY_BROKER_URL=redis_server.url, CELERY_TASK_ALWAYS_EAGER=False)
    assert (celery_app.conf.broker_url, celery_app.conf.task_always_eager) == (
        redis_server.url,
        False,
    )
    _celery_pools_reset()
    yield celery_app
    celery_app.conf.update(saved)
    _celery_pools_reset()


def upload(base_url: str, tmp_path: Path):
    """Create a video, upload a clip through the filesystem strategy; (session, id, key)."""
    user = User.objects.create_user("uploader", password="uploader-password-1")
    user.user_permissions.add(
        Permission.objects.get(codename="change_video", content_type__app_label="videos")
    )
    token = requests.post(
        f"{base_url}/api/token/",
        json={"username": "uploader", "password": "uploader-password-1"},
        timeout=30,
    ).json()["access"]
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    clip = make_clip(tmp_path / "clip.mp4", height=240, fps=25, seconds=2)
    video_id = session.post(f"{base_url}/api/videos/", json={"title": "outage"}).json()["id"]
    upload = session.post(
        f"{base_url}/api/videos/{video_id}/initiate-upload/",
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
    return session, video_id, upload["fields"]["key"]


@pytest.mark.e2e
@pytest.mark.outage
def test_upload_ended_during_an_outage_is_launched_by_the_watchdog_once_redis_is_back(
    videos_root, live_server_url, redis_server, celery_on, settings, tmp_path, caplog
):
    from celery.contrib.testing.worker import start_worker

    settings.DEBUG = True  # the dev runner tokens of env.d/peertube_runner
    runner_token = runner_seed(
        registration_token=settings.PEERTUBE_RUNNER_REGISTRATION_TOKEN,
        runner_name=settings.PEERTUBE_RUNNER_NAME,
        runner_token=settings.PEERTUBE_RUNNER_TOKEN,
    ).runner_token
    settings.VIDEO_LAUNCH_RECOVERY_DELAY = 0
    session, video_id, key = upload(live_server_url, tmp_path)

    redis_server.stop()
    assert not port_open("127.0.0.1", redis_server.port)
    caplog.set_level(logging.ERROR, logger="marsha_runner.videos")
    started = time.monotonic()
    ended = session.post(
        f"{live_server_url}/api/videos/{video_id}/upload-ended/", json={"file_key": key}
    )
    answered_in = time.monotonic() - started
    assert ended.status_code == 200, ended.text
    assert ended.json()["upload_state"] == UploadState.PROCESSING
    assert any("Could not enqueue the launch" in r.getMessage() for r in caplog.records)
    video = Video.objects.get(id=video_id)
    assert (video.upload_state, video.launched_stamp) == (UploadState.PROCESSING, None)

    # While Redis is still down the watchdog's enqueue is refused too: nothing lost, retried.
    out = StringIO()
    call_command("runners_watchdog", "--json", stdout=out)
    assert '"launches_refused_by_broker": 1' in out.getvalue()

    redis_server.start()
    from marsha_runner.operations.models import LaunchRecovery

    LaunchRecovery.objects.update(last_attempt_on=None)  # the next run may retry at once
    out = StringIO()
    call_command("runners_watchdog", "--json", stdout=out)
    assert '"launches_enqueued": 1' in out.getvalue()
    assert "launches_refused_by_broker" not in out.getvalue()

    with start_worker(celery_on, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        deadline = time.monotonic() + 60
        while Video.objects.get(id=video_id).launched_stamp is None:
            assert time.monotonic() < deadline, "the worker never ran the launch"
            time.sleep(0.2)

    (tmp_path / "runner").mkdir()
    runner = RunnerClient(live_server_url, runner_token, workdir=tmp_path / "runner")
    jobs = runner.run_until_idle(timeout=120, idle=2)
    video.refresh_from_db()
    assert video.upload_state == UploadState.READY, video.upload_error_reason
    assert jobs == len(video.resolutions) == 1
    print(f"\nupload-ended answered in {answered_in:.2f} s with Redis down; ready after it")
