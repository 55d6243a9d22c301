"""The storage (a SeaweedFS of the test's own) stopped and started again at each stage of a
video's life (issue 15, "Must show"): no 500, the video ``ready`` within a bound after the
storage answers again, one rendition row per resolution, the host told once.

Measured before the fix: upload-ended answered an HTML 500; a launch errored the video
"source unreadable" 14 s before S3 came back; a completion errored its job (failures=0) and
the video for good; the private bucket's HLS view answered 500 to every player.
"""

import logging
import threading
import time

import pytest

from marsha_runner.devrunner.client import RunnerClient
from marsha_runner.runners.deferred import completions_deferred
from marsha_runner.videos.constants import UploadState
from marsha_runner.videos.models import Video

from .conftest import (
    assert_outage_answer,
    assert_ready_once,
    report,
    wait_ready,
    watchdog_run,
    worker,
)
from .harness import Outage, wait_until

pytestmark = [pytest.mark.ffmpeg, pytest.mark.e2e, pytest.mark.outage]
LADDER = [240, 360]  # of a 360p clip: 360 (the parent) and 240
READY_BOUND = 60  # seconds from the storage's return to ready, on a loaded 2-core machine


def _run_runner(runner: RunnerClient, *, idle: float = 3) -> threading.Thread:
    """The dev runner working in a thread until idle (the test drives the outage meanwhile)."""
    errors = []

    def work():
        try:
            runner.run_until_idle(timeout=240, idle=idle)
        except Exception as err:  # noqa: BLE001 - reported by the test
            errors.append(err)

    thread = threading.Thread(target=work, daemon=True)
    thread.errors = errors
    thread.start()
    return thread


def _launched(video_id) -> bool:
    """Whether the launch ran; if not, one watchdog run (cron's, sped up) owes it."""
    video = Video.objects.get(id=video_id)
    assert video.upload_state != UploadState.ERROR, video.upload_error_reason
    if video.launched_stamp == video.processing_stamp:
        return True
    watchdog_run()
    return False


def _no_server_error(*counters) -> None:
    for counter in counters:
        assert not [status for status in counter if status >= 500 and status != 503], counter


def test_upload_ended_while_the_storage_is_down(s3_on_weed, client, runner, tmp_path):
    video_id, key = client.upload(tmp_path)
    outage = Outage(s3_on_weed["weed"])
    answer = client.upload_ended(video_id, key)
    assert_outage_answer(answer)
    assert Video.objects.get(id=video_id).upload_state == UploadState.PENDING  # nothing written
    detail = client.call("GET", f"{client.api}/{video_id}/")
    assert detail.status_code == 200  # reads that need no storage still answer

    outage.end()
    ended = client.patiently(lambda: client.upload_ended(video_id, key))
    assert ended.status_code == 200, ended.text
    assert ended.json()["upload_state"] == UploadState.PROCESSING
    # A storage coming back may answer HEADs before it serves reads: the eager launch then
    # leaves its work to the watchdog (cron, every minute) instead of erroring the video.
    wait_until(lambda: _launched(video_id), timeout=READY_BOUND, what="the launch", every=1)
    runner.run_until_idle(timeout=240, idle=3)
    video = wait_ready(video_id, timeout=READY_BOUND)
    assert_ready_once(video, resolutions=LADDER)
    _no_server_error(client.statuses, runner.statuses)
    report("upload-ended", "S3", "503 + Retry-After", time.monotonic() - outage.ended)


def test_source_download_while_the_storage_is_down(s3_on_weed, client, runner, tmp_path):
    video_id, key = client.upload(tmp_path)
    assert client.upload_ended(video_id, key).status_code == 200  # eager: launched on commit
    outage = Outage(s3_on_weed["weed"])
    working = _run_runner(runner)
    wait_until(lambda: runner.statuses[503], timeout=60, what="the download answered 503")
    outage.end()
    video = wait_ready(video_id, timeout=READY_BOUND)
    ready_after = time.monotonic() - outage.ended
    working.join(60)
    assert working.errors == []
    assert_ready_once(video, resolutions=LADDER)
    assert runner.failed == []  # the runner waited: nothing failed, nothing counted
    _no_server_error(client.statuses, runner.statuses)
    report("runner source download", "S3", "503 + Retry-After, the runner waits", ready_after)


class StorageDiesAtSuccess(RunnerClient):
    """A runner whose first result arrives while the storage is down."""

    outage = None

    def __init__(self, *args, weed, **kwargs):
        super().__init__(*args, **kwargs)
        self.weed = weed

    def success(self, job, video_file, playlist_file):
        with self._lock:
            first = self.outage is None
            if first:
                self.outage = Outage(self.weed)
        super().success(job, video_file, playlist_file)


def test_runner_success_while_the_storage_is_down(
    s3_on_weed, client, seeded_runner_token, live_server_url, tmp_path
):
    video_id, key = client.upload(tmp_path)
    assert client.upload_ended(video_id, key).status_code == 200
    (tmp_path / "runner").mkdir()
    runner = StorageDiesAtSuccess(
        live_server_url, seeded_runner_token, workdir=tmp_path / "runner",
        weed=s3_on_weed["weed"], concurrency=1,
    )  # fmt: skip
    working = _run_runner(runner)
    # The result was taken (204) and kept: the job waits, completing, for the storage.
    wait_until(completions_deferred, timeout=120, what="a completion deferred")
    working.join(120)  # the runner is idle: its children wait for the parent's completion
    assert working.errors == []
    assert runner.events[-1][0] == "success"
    assert Video.objects.get(id=video_id).upload_state == UploadState.PROCESSING
    runner.outage.end()
    wait_until(lambda: not completions_deferred(), timeout=READY_BOUND, what="completed")
    runner.run_until_idle(timeout=240, idle=3)  # the children, pinged when it completed
    video = wait_ready(video_id, timeout=READY_BOUND)
    ready_after = time.monotonic() - runner.outage.ended
    assert_ready_once(video, resolutions=LADDER)
    assert runner.failed == []
    _no_server_error(client.statuses, runner.statuses)
    report("runner success (completion)", "S3", "204, result kept, completed later", ready_after)


def test_hls_view_of_a_private_bucket_while_the_storage_is_down(
    s3_on_weed, client, runner, settings, tmp_path
):
    settings.VIDEOS_SIGN_URLS_AT_READ = True
    settings.VIDEOS_SIGNED_URL_EXPIRE = 600
    video_id, key = client.upload(tmp_path)
    assert client.upload_ended(video_id, key).status_code == 200
    runner.run_until_idle(timeout=240, idle=3)
    wait_ready(video_id, timeout=READY_BOUND)
    hls = client.call("GET", f"{client.api}/{video_id}/").json()["urls"]["manifests"]["hls"]
    assert client.call("GET", f"{client.base_url}{hls}").status_code == 200

    outage = Outage(s3_on_weed["weed"])
    assert_outage_answer(client.call("GET", f"{client.base_url}{hls}"))
    assert client.call("GET", f"{client.api}/{video_id}/").status_code == 200
    outage.end()
    played = client.patiently(lambda: client.call("GET", f"{client.base_url}{hls}"))
    assert played.status_code == 200, played.text
    assert played.text.startswith("#EXTM3U")
    video = Video.objects.get(id=video_id)
    assert_ready_once(video, resolutions=LADDER)
    _no_server_error(client.statuses, runner.statuses)
    report("HLS view (private bucket)", "S3", "503 + Retry-After", time.monotonic() - outage.ended)


class Recorded(logging.Handler):
    """The records of one logger, whatever the project's logging config propagates."""

    def __init__(self, name: str):
        super().__init__(logging.WARNING)
        self.logger = logging.getLogger(name)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())

    def __enter__(self):
        self.logger.addHandler(self)
        return self

    def __exit__(self, *exc):
        self.logger.removeHandler(self)


def test_launch_while_the_storage_is_down(s3_on_weed, celery_on_redis, client, runner, tmp_path):
    video_id, key = client.upload(tmp_path)
    assert client.upload_ended(video_id, key).status_code == 200  # queued; no worker yet
    outage = Outage(s3_on_weed["weed"])
    with worker(celery_on_redis["app"]), Recorded("marsha_runner.videos.tasks") as tasks_log:
        wait_until(
            lambda: any("retried in" in message for message in tasks_log.messages),
            timeout=60, what="the launch tried during the outage",
        )  # fmt: skip
        assert Video.objects.get(id=video_id).upload_state == UploadState.PROCESSING
        outage.end()
        wait_until(
            lambda: Video.objects.get(id=video_id).launched_stamp,
            timeout=READY_BOUND, what="launched once the storage answered",
        )  # fmt: skip
        runner.run_until_idle(timeout=240, idle=3)
        video = wait_ready(video_id, timeout=READY_BOUND)
        ready_after = time.monotonic() - outage.ended
    assert_ready_once(video, resolutions=LADDER)
    _no_server_error(client.statuses, runner.statuses)
    report("launch", "S3", "retried with backoff, never errored", ready_after)
