"""PROMETHEUS_MULTIPROC_DIR: two uvicorn processes (and a worker-like third one that has
exited) write to one folder, and /metrics of either adds them up; the database gauges are
read once per scrape, not once per process."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from django.db import connection

from marsha_runner.videos.constants import UploadState
from tests.conftest import database_url_of, free_port, port_open
from tests.factories import VideoFactory
from tests.observability.metrics_scrape import scrape, value

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
BASE_DIR = Path(__file__).resolve().parents[2]
# A Celery worker's process records a job outcome (what a task completing a job does).
WORKER = """
import django
django.setup()
from marsha_runner.telemetry.instruments import job_finished_record
for _ in range(3):
    job_finished_record(job_type="vod-hls-transcoding", state="errored")
"""


@pytest.fixture
def shared_env(tmp_path):
    folder = tmp_path / "prometheus"
    folder.mkdir()
    return {
        **os.environ,
        "MARSHA_RUNNER_ENV_FILE": "env.d/test",
        "DATABASE_URL": database_url_of(connection),
        "DATABASE_POOL": "False",
        "REDIS_URL": "",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "PROMETHEUS_MULTIPROC_DIR": str(folder),
    }


@pytest.fixture
def two_workers(shared_env):
    procs, urls = [], []
    for _ in range(2):
        port = free_port()
        args = [sys.executable, "-m", "uvicorn", "marsha_runner.asgi:application"]
        args += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
        procs.append(subprocess.Popen(args, cwd=BASE_DIR, env=shared_env))
        urls.append(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 60
        for proc, url in zip(procs, urls, strict=True):
            while not port_open("127.0.0.1", int(url.rsplit(":", 1)[1])):
                assert proc.poll() is None, "uvicorn died"
                assert time.monotonic() < deadline, "uvicorn did not start"
                time.sleep(0.1)
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)


def test_counts_add_up_across_processes(two_workers, shared_env):
    first, second = two_workers
    VideoFactory(upload_state=UploadState.PROCESSING)
    VideoFactory(upload_state=UploadState.PROCESSING)
    for _ in range(7):
        assert requests.get(f"{first}/healthz", timeout=30).status_code == 200
    for _ in range(5):
        assert requests.get(f"{second}/healthz", timeout=30).status_code == 200
    for _ in range(3):  # refused: no JWT
        assert requests.get(f"{second}/api/videos/", timeout=30).status_code == 401
    subprocess.run(
        [sys.executable, "-c", WORKER], cwd=BASE_DIR, env=shared_env, check=True, timeout=120
    )

    for url in (first, second):
        samples = scrape(url)
        healthz = {"route": "healthz", "method": "GET", "status": "200"}
        assert value(samples, "marsha_runner_http_requests_total", **healthz) == 12
        refused = {"route": "video-list", "method": "GET", "status": "401"}
        assert value(samples, "marsha_runner_http_requests_total", **refused) == 3
        assert (
            value(samples, "marsha_runner_http_request_duration_seconds_count", route="healthz")
            == 12
        )
        finished = {"type": "vod-hls-transcoding", "state": "errored"}
        assert value(samples, "marsha_runner_runner_jobs_finished_total", **finished) == 3
        # Read from the database once per scrape: 2, not 2 per process.
        assert value(samples, "marsha_runner_videos", state="processing") == 2
    # A scrape is counted once answered (after its last byte is sent, so poll a moment): the
    # two above, one by each process, add up.
    metrics = {"route": "metrics", "method": "GET", "status": "200"}
    deadline, polls = time.monotonic() + 30, 0
    while (counted := value(scrape(first), "marsha_runner_http_requests_total", **metrics)) < 2:
        polls += 1
        assert time.monotonic() < deadline, counted
        time.sleep(0.1)
    assert 2 <= counted <= 2 + polls  # the earlier polling scrapes are counted in turn
