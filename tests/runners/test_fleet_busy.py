"""Every runner busy while a job waits (issue 18, point 3), with four dev runners at once.

Each dev runner follows peertube-runner's rule (first supported job of the list, one accept
per check; after a refused accept it waits for the next ping or the end of one of its jobs;
2.5 s after an accept it checks again). Before the fix every runner got the same list in the
same order: one runner won each ping, the three others sat idle while jobs waited.

Jobs are held by the runners until every one of them is accepted (or a deadline), so a fast
job cannot free a slot and hide an idle one; then each is transcoded for real (a 1 s 144p
clip).
"""

import shutil
import threading
import time

import pytest
from django.db import transaction
from django_peertube_runner_connector.models import RunnerJob, Video, VideoFile

from marsha_runner.devrunner.client import RunnerClient
from marsha_runner.devrunner.fleet import idle_slot_seconds
from marsha_runner.runners.handlers import HLSTranscodingJobHandler
from tests.runners.factories import runner_make
from tests.runners.media import store_clip

pytestmark = [pytest.mark.e2e, pytest.mark.ffmpeg]

RUNNERS, SLOTS, JOBS = 4, 2, 9
HOLD = 6.0  # the longest a job is held before it is transcoded


class HeldRunner(RunnerClient):
    """The dev runner, each job held until ``release`` is set (or ``HOLD`` s)."""

    release: threading.Event

    def process(self, job):
        self.release.wait(HOLD)
        return super().process(job)


def _pending_jobs(domain, videos_root, count):
    """``count`` independent pending HLS jobs (one per video), committed together."""
    clip = videos_root / store_clip(
        videos_root, "tmp/fleet/clip", width=256, height=144, seconds=1
    )
    with transaction.atomic():
        for index in range(count):
            source = videos_root / f"tmp/fleet{index}/video/1"
            source.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(clip, source)
            video = Video.objects.create(
                state=2, directory=f"vod/fleet{index}/video/1", baseFilename="1"
            )
            VideoFile.objects.create(
                video=video,
                filename=f"tmp/fleet{index}/video/1",
                extname="",
                size=source.stat().st_size,
                resolution=144,
                fps=30,
            )
            HLSTranscodingJobHandler().create(
                video=video, resolution=144, fps=30, depends_on_runner_job=None, domain=domain
            )
    return time.time()  # committed: pending from now on, runners pinged


def test_every_slot_is_busy_within_a_second(videos_root, live_server_url):
    release = threading.Event()
    runners = []
    for index in range(RUNNERS):
        runner = HeldRunner(live_server_url, runner_make(f"fleet-{index}"), concurrency=SLOTS)
        runner.release = release
        runners.append(runner)
    done, errors = {}, []

    def work(runner):
        try:
            done[runner] = runner.run_until_idle(timeout=120, idle=3)
        except Exception as err:  # noqa: BLE001  (reported by the assertion below)
            errors.append(err)

    threads = [threading.Thread(target=work, args=(runner,)) for runner in runners]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 20
    while not all(runner.connected for runner in runners):
        assert time.monotonic() < deadline, "the runners did not connect"
        time.sleep(0.05)

    pending_since = _pending_jobs(live_server_url, videos_root, JOBS)
    deadline = time.monotonic() + HOLD
    while sum(len(runner.slots) for runner in runners) < RUNNERS * SLOTS:
        if time.monotonic() > deadline:
            break
        time.sleep(0.02)
    busy_at = time.time()
    release.set()
    for thread in threads:
        thread.join(150)
    assert errors == []

    accepted = sorted(start for runner in runners for start, _ in runner.slots)
    waits = [(pending_since, job.startedAt.timestamp()) for job in RunnerJob.objects.all()]
    idle = idle_slot_seconds(
        slots=[tuple(slot) for runner in runners for slot in runner.slots],
        capacity=RUNNERS * SLOTS,
        waits=waits,
        until=busy_at,
    )
    first_slots = [round(t - pending_since, 2) for t in accepted[: RUNNERS * SLOTS]]
    report = (
        f"slots busy after {first_slots} s; idle slot-seconds while jobs waited {idle:.2f}; "
        f"refused accepts {[r.refused for r in runners]}; "
        f"dropped pings {[r.pings_dropped for r in runners]}"
    )
    print(report)
    assert sum(done.values()) == JOBS, report
    assert [runner.max_in_flight for runner in runners] == [SLOTS] * RUNNERS, report
    assert len(accepted) == JOBS
    assert accepted[RUNNERS * SLOTS - 1] - pending_since <= 1.0, report
    # Before: 29 slot-seconds (slots idle for seconds); the floor is a ping, a request and an
    # accept per slot, twice per runner (tenths of a second each under load).
    assert idle <= 0.75 * RUNNERS * SLOTS, report
