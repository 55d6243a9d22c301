"""A Celery broker outage loses no upload, and the launch resumes fast (issue 9 point 8, then
issue 15 point 5).

Measured before: with Redis stopped, upload-ended first answered 500 (issue 9); then 200
``processing`` but the launch was enqueued again only after ``VIDEO_LAUNCH_RECOVERY_DELAY``
(300 s) — five minutes lost for a 17 s blink. Now the refused enqueue is recorded on the video
and the next watchdog run (every minute) enqueues it at once, once; a refusal by a broker
still down is not counted as an attempt. Redis is real (started and stopped in the test), and
so is Celery (a worker thread on that Redis).
"""

import time

import pytest

from marsha_runner.videos.constants import UploadState
from marsha_runner.videos.models import Video

from .conftest import assert_ready_once, report, wait_ready, watchdog_run, worker
from .harness import Outage, wait_until

pytestmark = [pytest.mark.ffmpeg, pytest.mark.e2e, pytest.mark.outage]


def test_upload_ended_while_the_broker_is_down_is_launched_at_the_next_watchdog_run(
    videos_root, short_tolerances, celery_on_redis, client, runner, settings, tmp_path
):
    settings.STORAGE_BACKEND = "marsha_runner.storage.filesystem"
    settings.VIDEO_LAUNCH_RECOVERY_DELAY = 300  # the default: not what brings it back
    video_id, key = client.upload(tmp_path)
    outage = Outage(celery_on_redis["redis"])
    ended = client.upload_ended(video_id, key)
    assert ended.status_code == 200, ended.text
    assert ended.json()["upload_state"] == UploadState.PROCESSING
    video = Video.objects.get(id=video_id)
    assert video.launched_stamp is None and video.launch_refused_on is not None

    # While the broker is still down the watchdog's enqueue is refused too: not counted.
    assert watchdog_run() == {"launches_refused_by_broker": 1}
    assert watchdog_run() == {"launches_refused_by_broker": 1}

    outage.end()
    assert watchdog_run() == {"launches_enqueued": 1}  # at once, not 300 s later
    assert watchdog_run() == {}  # once: it is on its way
    with worker(celery_on_redis["app"]):
        wait_until(
            lambda: Video.objects.get(id=video_id).launched_stamp,
            timeout=60, what="the worker ran the launch",
        )  # fmt: skip
    runner.run_until_idle(timeout=240, idle=3)
    video = wait_ready(video_id, timeout=60)
    assert video.launch_refused_on is None
    assert_ready_once(video, resolutions=[240, 360])
    report("upload-ended", "Redis", "200 processing; launched at the next watchdog run",
           time.monotonic() - outage.ended)  # fmt: skip
