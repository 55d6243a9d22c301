"""Soak: the jobs of 200 videos (SOAK_VIDEOS to change it),
6 runner processes at once, 20 % of the jobs taken by a runner that
is killed mid-job (SIGKILL: no abort, no error), the watchdog run every 2 s with an 8 s
stalled timeout. Every video must end ready or error, no job processing, no rendition stored
twice, no completion applied twice. Prints the counts and the wall time.

Real parts: uvicorn + socket.io, PostgreSQL, ffmpeg, runner processes speaking the protocol
(tests/operations/soak_runner.py). The runners take tiny sources (160x90, 1 s: one rendition
per video) so the run stays around two minutes.
"""

import os
import queue
import random
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.conf import settings
from django.db import connection
from django_peertube_runner_connector.models import RunnerJob, RunnerJobState, VideoFile

from marsha_runner.operations.services import runners_watchdog
from marsha_runner.runners.tokens import runner_seed
from marsha_runner.videos import transitions
from marsha_runner.videos.constants import UploadState
from marsha_runner.videos.launch import video_launch_transcoding
from marsha_runner.videos.models import Video
from tests.runners.media import make_clip

pytestmark = [pytest.mark.soak, pytest.mark.e2e, pytest.mark.postgres, pytest.mark.ffmpeg]

# The 200 (measured: 183 s in all on 2 CPUs, 31 s of it the 200 launches).
VIDEOS = int(os.environ.get("SOAK_VIDEOS", 200))
RUNNERS = 6
KILL_RATE = 0.2
STALLED_TIMEOUT = 8
WATCHDOG_EVERY = 2.0
DEADLINE = int(os.environ.get("SOAK_DEADLINE", 900))
STAMP = 1767261600


class RunnerProcess:
    """One soak_runner child; its stdout lines go to ``events`` as (self, line)."""

    def __init__(self, url: str, token: str, workdir, events: queue.Queue):
        workdir.mkdir()
        self.token = token
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.operations.soak_runner", url, token, str(workdir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            bufsize=1,
            cwd=settings.BASE_DIR,
        )
        self.reader = threading.Thread(target=self._read, args=(events,), daemon=True)
        self.reader.start()

    def _read(self, events):
        for line in self.process.stdout:
            events.put((self, line.split()))

    def go(self):
        try:
            self.process.stdin.write("go\n")
            self.process.stdin.flush()
        except (BrokenPipeError, ValueError):
            pass

    def kill(self):
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


def launch(video_id, stamp):
    try:
        video_launch_transcoding(video_id=video_id, stamp=stamp)
    finally:
        connection.close()


def test_soak_runners_killed_mid_job_the_watchdog_recovers_everything(
    videos_root, live_server_url, tmp_path, monkeypatch
):
    notified = []  # (video id, state) of every completion side effect pushed to clients
    real_notify = transitions.video_state_changed

    def spy(*, video_id, state, payload):
        notified.append((str(video_id), state))
        return real_notify(video_id=video_id, state=state, payload=payload)

    monkeypatch.setattr(transitions, "video_state_changed", spy)

    clip = make_clip(tmp_path / "clip.mp4", width=160, height=90, fps=25, seconds=1)
    setup_started = time.monotonic()
    batch = [
        Video(title=f"soak {i}", upload_state=UploadState.PROCESSING, processing_stamp=STAMP)
        for i in range(VIDEOS)
    ]
    Video.objects.bulk_create(batch)
    for video in batch:
        target = videos_root / video.source_key(STAMP)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(clip, target)
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda v: launch(v.id, STAMP), batch))
    assert RunnerJob.objects.filter(state=RunnerJobState.PENDING).count() == VIDEOS
    setup_seconds = time.monotonic() - setup_started
    notified.clear()

    events: queue.Queue = queue.Queue()
    rng = random.Random(9)
    spawned = 0

    def spawn():
        nonlocal spawned
        token = runner_seed(
            registration_token="ptrrt-soak",
            runner_name=f"soak-{spawned}",
            runner_token=f"ptrt-soak-{spawned}",
        ).runner_token
        spawned += 1
        return RunnerProcess(live_server_url, token, tmp_path / f"runner-{spawned}", events)

    runners = [spawn() for _ in range(RUNNERS)]
    done = Counter()  # job uuid -> successes the server accepted (204)
    refused = killed = watchdog_runs = 0
    recovered = Counter()
    started = time.monotonic()
    next_watchdog = started + WATCHDOG_EVERY
    try:
        while True:
            now = time.monotonic()
            assert now - started < DEADLINE, f"not finished after {DEADLINE} s"
            if now >= next_watchdog:
                report = runners_watchdog(stalled_timeout=STALLED_TIMEOUT)
                recovered.update(report.counts)
                watchdog_runs += 1
                next_watchdog = now + WATCHDOG_EVERY
                if not Video.objects.filter(upload_state=UploadState.PROCESSING).exists():
                    break
            try:
                runner, words = events.get(timeout=0.2)
            except queue.Empty:
                continue
            if words[0] == "WORKING":
                if rng.random() < KILL_RATE:
                    runner.kill()  # mid-job: source downloaded, progress sent, no result
                    killed += 1
                    runners.remove(runner)
                    runners.append(spawn())
                else:
                    runner.go()
            elif words[0] == "DONE":
                done[words[1]] += 1
            elif words[0] == "REFUSED":
                refused += 1
    finally:
        for runner in runners:
            runner.stop()
    wall = time.monotonic() - started

    states = Counter(Video.objects.values_list("upload_state", flat=True))
    jobs = Counter(RunnerJob.objects.values_list("state", flat=True))
    renditions = Counter(
        VideoFile.objects.filter(streamingPlaylist__isnull=False).values_list(
            "video_id", flat=True
        )
    )
    completions = Counter(v for v, state in notified if state in ("ready", "error"))
    job_states = {RunnerJobState(s).label: n for s, n in jobs.items()}
    print(
        f"\nsoak: {VIDEOS} videos, {RUNNERS} runners at once ({spawned} processes), "
        f"{killed} killed mid-job ({killed / max(1, sum(done.values()) + killed):.0%} of "
        f"the jobs taken), watchdog runs {watchdog_runs}, recovered {dict(recovered)}, "
        f"results refused {refused}\n"
        f"  videos {dict(states)}; jobs {job_states}"
        f"\n  wall time {wall:.1f} s (setup {setup_seconds:.1f} s: {VIDEOS} launches)"
    )

    assert states[UploadState.READY] + states[UploadState.ERROR] == VIDEOS
    assert not jobs.get(RunnerJobState.PROCESSING), "no job left processing"
    assert not jobs.get(RunnerJobState.PENDING), "no job left pending"
    # Every kill is taken back by the watchdog once; a requeue beyond that is a live runner
    # too slow for the short timeout on a loaded machine: its result is then refused.
    taken_back = recovered["stalled_jobs_requeued"] + recovered["stalled_jobs_errored"]
    assert killed > 0
    assert taken_back == killed + refused, "each requeue is a kill or a refused late result"
    assert max(done.values()) == 1, "no result accepted twice for one job"
    assert sum(done.values()) == jobs[RunnerJobState.COMPLETED]
    assert max(renditions.values()) == 1, "no rendition stored twice"
    assert len(renditions) == states[UploadState.READY]
    assert set(completions.values()) == {1}, "no completion applied twice"
    assert len(completions) == VIDEOS
