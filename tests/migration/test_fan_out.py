"""``migrate_to_scaleway --fan-out``: one Celery task per video, real workers on Redis.

Worker processes are real ``celery worker`` processes (prefork, one child each) on their own
queue of the test's Redis database; videos live in two SeaweedFS servers.
"""

import json
import os
import signal
import socket
import subprocess
import sys

import pytest

from marsha_runner.celery import app as celery_app
from marsha_runner.migration.models import MigrationLock, MigrationObject, MigrationVideo
from marsha_runner.videos.constants import StorageLocation
from marsha_runner.videos.models import Video

from .conftest import BASE_DIR, manage
from .legacy import assert_identical, legacy_video
from .test_resume import wait_for

pytestmark = [
    pytest.mark.s3,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]


class Worker:
    """``celery worker`` in a subprocess; its log is read to know when it is ready."""

    def __init__(self, env: dict, name: str, log_dir):
        self.name = f"{name}@{socket.gethostname()}"
        self.log = log_dir / f"{name}.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "marsha_runner", "worker", "-P", "prefork",
             "-c", "1", "-n", self.name, "--without-gossip", "--without-mingle",
             "--without-heartbeat", "-l", "info"],
            cwd=BASE_DIR, env=env, stdout=self.log.open("wb"), stderr=subprocess.STDOUT,
        )  # fmt: skip

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self):
        """Ready when it answers a remote-control ping through the broker."""
        wait_for(
            lambda: celery_app.control.ping(destination=[self.name], timeout=0.5),
            proc=self.proc,
            seconds=180,
            what=f"{self.name} answering a ping",
        )

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


@pytest.fixture
def worker_env(buckets):
    """Workers and the fan-out on the test's own Redis database, its queues emptied first
    (a task left by an earlier run would name a video of another test database)."""
    celery_app.control.purge()
    return {
        **buckets.env(),
        "REDIS_URL": os.environ["REDIS_URL"],
        "CELERY_TASK_ALWAYS_EAGER": "False",
    }


def fan_out(env) -> dict:
    proc = manage(env, "migrate_to_scaleway", "--fan-out", "--json")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()[-2000:]
    return json.loads(out)


def status(env) -> dict:
    proc = manage(env, "migrate_to_scaleway", "--status", "--json")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()[-2000:]
    return json.loads(out)


def migrated_count() -> int:
    return Video.objects.filter(storage_location=StorageLocation.SCALEWAY).count()


def test_two_workers_migrate_30_videos_each_exactly_once(buckets, worker_env, tmp_path):
    videos = [legacy_video(buckets, segments=1) for _ in range(30)]
    workers = [Worker(worker_env, name, tmp_path) for name in ("w1", "w2")]
    try:
        for worker in workers:
            worker.wait_ready()
        assert fan_out(worker_env) == {"queued": 30, "error": ""}
        wait_for(lambda: migrated_count() == 30, seconds=300, what="30 videos migrated")
    finally:
        for worker in workers:
            worker.stop()

    rows = list(MigrationVideo.objects.all())
    assert len(rows) == 30
    assert {row.state for row in rows} == {MigrationVideo.State.MIGRATED}
    assert {row.attempts for row in rows} == {1}  # each video run once, by one worker
    processes = {row.worker.split(":")[1] for row in rows}
    assert len(processes) == 2, processes  # both workers took videos
    total = sum(len(buckets.source_keys(v.legacy_prefix())) for v in videos)
    assert MigrationObject.objects.filter(state=MigrationObject.State.VERIFIED).count() == total
    for video in videos[:3]:
        assert_identical(buckets, video)
    progress = status(worker_env)
    assert progress["migrated"] == progress["videos"] == 30
    assert progress["failed"] == progress["pending"] == progress["running"] == 0
    assert progress["objects_done"] == progress["objects"] == total
    assert not MigrationLock.objects.exists()


def test_a_worker_killed_mid_video_and_the_migration_completes(buckets, worker_env, tmp_path):
    """The worker process copying the video is SIGKILLed: the message goes back to the queue
    (acks_late, reject_on_worker_lost), the next process takes the dead lease over and
    finishes from the verified objects."""
    video = legacy_video(buckets, segments=300)
    total = len(buckets.source_keys(video.legacy_prefix()))
    env = {**worker_env, "MIGRATION_CONCURRENCY": "1", "MIGRATION_BANDWIDTH": "20000"}
    worker = Worker(env, "w1", tmp_path)
    try:
        worker.wait_ready()
        assert fan_out(env)["queued"] == 1

        def some_verified():
            row = MigrationVideo.objects.filter(video=video).first()
            return row is not None and row.objects_done >= 20

        wait_for(some_verified, proc=worker.proc, what="20 objects verified")
        lock = MigrationLock.objects.get(video=video)
        before = {
            row.key: row.verified_on
            for row in MigrationObject.objects.filter(
                video=video, state=MigrationObject.State.VERIFIED
            )
        }
        assert 20 <= len(before) < total
        os.kill(lock.pid, signal.SIGKILL)  # the pool process running the task

        wait_for(lambda: migrated_count() == 1, proc=worker.proc, seconds=300, what="migrated")
    finally:
        worker.stop()
    assert "WorkerLostError" in worker.text()
    row = MigrationVideo.objects.get(video=video)
    assert row.state == MigrationVideo.State.MIGRATED and row.attempts == 2
    assert str(lock.pid) not in row.worker.split(":")[1]
    after = dict(
        MigrationObject.objects.filter(video=video, key__in=before).values_list(
            "key", "verified_on"
        )
    )
    assert after == before  # verified objects were not copied again
    assert_identical(buckets, video)
