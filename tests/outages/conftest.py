"""Fixtures of the fault tests: a SeaweedFS of the test's own as the video storage, short
tolerances, a counter of the host's transcoding-ended calls, and the client side (the API
through a JWT session, the dev runner client)."""

import json
import time
from collections import Counter
from io import StringIO

import pytest
import requests
from django.core.management import call_command

from marsha_runner.devrunner.client import RunnerClient
from marsha_runner.videos.constants import UploadState
from marsha_runner.videos.models import Video
from tests.conftest import public_read, reset_video_storage
from tests.videos.conftest import jwt_session, seeded_runner_token  # noqa: F401 - fixtures
from tests.videos.media import make_clip

from .harness import Redis, Weed, wait_until

TOLD: list = []  # every outcome the host was told, in order (the counting callback)


def told(*, outcome):
    """``RUNNERS_TRANSCODING_ENDED_CALLBACK`` of the fault tests: count, then the real one."""
    from marsha_runner.videos.completion import video_transcoding_ended

    TOLD.append(outcome)
    video_transcoding_ended(outcome=outcome)


@pytest.fixture
def weed(tmp_path):
    """A SeaweedFS of this test's own, started; stopped at the end."""
    workdir = tmp_path / "weed-service"
    workdir.mkdir()
    server = Weed(workdir)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def short_tolerances(settings, tmp_path):
    """Seconds instead of minutes, so an outage of a few seconds is seen through quickly."""
    settings.OUTAGE_RETRY_AFTER = 1
    settings.RUNNERS_COMPLETION_SPOOL = str(tmp_path / "completions")
    settings.RUNNERS_COMPLETION_RETRY_DELAYS = [0.5, 1]
    settings.VIDEO_LAUNCH_RETRY_COUNTDOWNS = [1]
    settings.VIDEO_LAUNCH_OUTAGE_BACKOFF_MAX = 1
    settings.VIDEO_LAUNCH_OUTAGE_TOLERANCE = 120
    settings.RUNNERS_TRANSCODING_ENDED_CALLBACK = "tests.outages.conftest.told"
    TOLD.clear()
    yield settings


@pytest.fixture
def s3_on_weed(weed, settings, short_tolerances):
    """The video storage (and the upload strategy) on the test's SeaweedFS, ``vod/``
    public-read as in production; {"bucket", "weed"}."""
    bucket = f"fault-{int(time.time() * 1000) % 10**9}"
    client = weed.client()
    client.create_bucket(Bucket=bucket)
    public_read(client, bucket, "vod/")
    options = {
        "bucket_name": bucket,
        "endpoint_url": weed.endpoint,
        "region_name": "us-east-1",
        "access_key": weed.access_key,
        "secret_key": weed.secret_key,
        "addressing_style": "path",
        "signature_version": "s3v4",
        "querystring_auth": True,
        "file_overwrite": True,
    }
    settings.STORAGE_BACKEND = "marsha_runner.storage.s3"
    settings.STORAGES = {
        **settings.STORAGES,
        "videos": {"BACKEND": "marsha_runner.storage.s3.VideoS3Storage", "OPTIONS": options},
    }
    reset_video_storage()
    yield {"bucket": bucket, "weed": weed}
    reset_video_storage()


class Client:
    """The uploader's side: the API through a JWT session, every status it was answered."""

    def __init__(self, base_url: str, session: requests.Session):
        self.base_url = base_url
        self.session = session
        self.statuses: Counter = Counter()
        self.api = f"{base_url}/api/videos"

    def call(self, method: str, url: str, **kwargs) -> requests.Response:
        response = self.session.request(method, url, timeout=60, **kwargs)
        self.statuses[response.status_code] += 1
        return response

    def upload(self, tmp_path, *, height: int = 360) -> tuple[str, str]:
        """Create a video and upload a 2 s clip to where initiate-upload says; (id, key)."""
        clip = make_clip(tmp_path / f"clip-{height}.mp4", height=height, fps=25, seconds=2)
        video_id = self.call("POST", f"{self.api}/", json={"title": "outage"}).json()["id"]
        upload = self.call(
            "POST",
            f"{self.api}/{video_id}/initiate-upload/",
            json={"filename": "clip.mp4", "mimetype": "video/mp4", "size": clip.stat().st_size},
        ).json()
        with open(clip, "rb") as handle:
            posted = requests.post(
                upload["url"],
                data=upload["fields"],
                files={"file": ("clip.mp4", handle, "video/mp4")},
                timeout=60,
            )
        assert posted.status_code in (200, 201, 204), posted.text
        return video_id, upload["fields"]["key"]

    def upload_ended(self, video_id: str, key: str) -> requests.Response:
        return self.call("POST", f"{self.api}/{video_id}/upload-ended/", json={"file_key": key})

    def patiently(self, send, *, timeout: float = 120) -> requests.Response:
        """Like a client honouring Retry-After: ``send()`` again while it answers 503."""
        deadline = time.monotonic() + timeout
        while True:
            response = send()
            if response.status_code != 503:
                return response
            assert time.monotonic() < deadline, "still 503"
            time.sleep(min(float(response.headers["Retry-After"]), 1))


@pytest.fixture
def client(live_server_url, jwt_session):  # noqa: F811 - the fixture imported above
    return Client(live_server_url, jwt_session(live_server_url))


@pytest.fixture
def runner(live_server_url, seeded_runner_token, tmp_path):  # noqa: F811
    (tmp_path / "runner").mkdir()
    return RunnerClient(
        live_server_url, seeded_runner_token, workdir=tmp_path / "runner", outage_tolerance=120
    )


def assert_outage_answer(response: requests.Response) -> None:
    """503, Retry-After, the API's JSON error shape, no internals in the message."""
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "1"
    body = response.json()
    assert body == {
        "errors": [{"field": None, "message": body["errors"][0]["message"], "code": "unavailable"}]
    }
    assert "briefly unavailable" in body["errors"][0]["message"]
    assert "127.0.0.1" not in response.text and "http" not in response.text


def watchdog_run() -> dict:
    """One ``runners_watchdog`` run, as cron makes it every minute: its counts."""
    out = StringIO()
    call_command("runners_watchdog", "--json", stdout=out)
    return json.loads(out.getvalue())["counts"]


def wait_ready(video_id: str, *, timeout: float = 120) -> Video:
    """The video once ``ready`` (fails at once on ``error``, with its reason)."""

    def settled():
        video = Video.objects.get(id=video_id)
        assert video.upload_state != UploadState.ERROR, video.upload_error_reason
        return video if video.upload_state == UploadState.READY else None

    return wait_until(settled, timeout=timeout, what=f"video {video_id} ready", every=0.1)


def assert_ready_once(video: Video, *, resolutions: list[int]) -> None:
    """Ready with every resolution, one rendition row per resolution, the host told once,
    no job failure counted."""
    from django_peertube_runner_connector.models import Video as TranscodedVideo
    from django_peertube_runner_connector.models import VideoFile

    from marsha_runner.runners.selectors import runner_jobs_of_video

    assert video.upload_state == UploadState.READY
    assert video.resolutions == resolutions
    destination = video.output_prefix(video.active_stamp)
    transcoded = TranscodedVideo.objects.get(directory=destination)
    rows = list(
        VideoFile.objects.filter(video=transcoded, streamingPlaylist__isnull=False)
        .order_by("resolution")
        .values_list("resolution", flat=True)
    )
    assert rows == resolutions  # one row per resolution
    assert [o.destination for o in TOLD] == [destination]  # the host told once
    failures = list(runner_jobs_of_video(video_uuid=transcoded.uuid).values_list("failures"))
    assert failures == [(0,)] * len(resolutions), failures


def report(stage: str, service: str, answer: str, ready_after: float) -> None:
    """One line of the issue's table (``pytest -s`` shows them)."""
    print(
        f"\nFAULT | {stage} | {service} | {answer} | ready {ready_after:.1f} s after it returned"
    )


def _celery_pools_reset(app):
    """Forget the connections made for the previous broker URL (Celery and kombu cache them)."""
    from kombu import pools

    pools.reset()
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def celery_on_redis(tmp_path):
    """Celery for real (not eager) on a Redis of the test's own; restored after.
    {"app", "redis"}; the test starts its worker when it wants the queue served."""
    from marsha_runner.celery import app

    workdir = tmp_path / "redis-service"
    workdir.mkdir()
    redis = Redis(workdir)
    redis.start()
    # The app reads Django settings under the CELERY_ namespace: set the prefixed keys.
    keys = ("CELERY_BROKER_URL", "CELERY_TASK_ALWAYS_EAGER")
    saved = {key: app.conf[key] for key in keys}
    app.conf.update(CELERY_BROKER_URL=redis.url, CELERY_TASK_ALWAYS_EAGER=False)
    assert (app.conf.broker_url, app.conf.task_always_eager) == (redis.url, False)
    _celery_pools_reset(app)
    yield {"app": app, "redis": redis}
    app.conf.update(saved)
    _celery_pools_reset(app)
    redis.stop()


def worker(app):
    """A Celery worker thread serving ``app``'s queue (a context manager)."""
    from celery.contrib.testing.worker import start_worker

    return start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10)
