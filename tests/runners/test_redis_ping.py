"""Pings through Redis: a job created anywhere reaches runners anywhere.

Why: docs/design.md#pings-across-processes.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import database_url_of, free_port, port_open
from tests.runners.factories import runner_make

pytestmark = pytest.mark.redis
BASE_DIR = Path(__file__).resolve().parents[2]


@pytest.fixture
def redis_url(settings):
    url = os.environ["REDIS_URL"]
    settings.DJANGO_PEERTUBE_RUNNER_CONNECTOR_REDIS = url
    return url


def test_ping_is_published_on_redis_without_leaking_connections(redis_url):
    import redis

    from marsha_runner.runners.socket import runners_ping

    observer = redis.Redis.from_url(redis_url)
    pubsub = observer.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe("socketio")
    runners_ping()  # warm up: the one manager of this process connects and publishes
    deadline = time.monotonic() + 10
    while not _is_ping(pubsub.get_message(timeout=0.5)):
        assert time.monotonic() < deadline, "the warm-up ping never reached Redis"
    while pubsub.get_message(timeout=0):  # nothing else left queued from the warm-up
        pass
    clients_before = observer.info("clients")["connected_clients"]
    for _ in range(100):
        runners_ping()
    received = []
    deadline = time.monotonic() + 5
    while len(received) < 100 and time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.5)
        if _is_ping(message):
            received.append(message)
    clients_after = observer.info("clients")["connected_clients"]
    pubsub.close()
    assert len(received) >= 100
    # Other test processes may share this Redis: allow a little noise, not one per ping.
    assert clients_after - clients_before < 5


def _is_ping(message) -> bool:
    return bool(message) and b"available-jobs" in message["data"]


def _relaying(clients, *, within: float = 30) -> None:
    """Wait until every web process relays Redis pings to its runner: publish a ping from
    here until each client got one (a server subscribes once its first socket connects).

    Pub/sub keeps order and drops what was published before a subscription, so once every
    client got the last ping published, none of these pings is still on its way."""
    from marsha_runner.runners.socket import runners_ping

    deadline = time.monotonic() + within
    waiting = list(clients)
    while waiting:
        assert time.monotonic() < deadline, f"{len(waiting)} process(es) never relayed a ping"
        runners_ping()
        waiting = [client for client in clients if not client.wait_ping(0.5)]
        if waiting:
            for client in clients:
                client.wait_ping(0)  # consumed: the next round asks every client again


def _env(redis_url: str) -> dict:
    from django.db import connection

    return {
        **os.environ,
        "MARSHA_RUNNER_ENV_FILE": "env.d/test",
        "DATABASE_URL": database_url_of(connection),
        "DATABASE_POOL": "False",
        "REDIS_URL": redis_url,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
    }


@pytest.fixture
def two_web_processes(transactional_db, redis_url):
    """Two uvicorn processes of marsha_runner.asgi sharing the test database and Redis."""
    env = _env(redis_url)
    procs, urls = [], []
    for _ in range(2):
        port = free_port()
        args = [sys.executable, "-m", "uvicorn", "marsha_runner.asgi:application"]
        args += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
        procs.append(subprocess.Popen(args, cwd=BASE_DIR, env=env))
        urls.append(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 30
        for proc, url in zip(procs, urls, strict=True):
            port = int(url.rsplit(":", 1)[1])
            while not port_open("127.0.0.1", port):
                assert proc.poll() is None, "uvicorn died"
                assert time.monotonic() < deadline, "uvicorn did not start"
                time.sleep(0.1)
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=10)


CREATE_JOB = """
from django.db import transaction
from django_peertube_runner_connector.models import Video
from marsha_runner.runners.handlers import HLSTranscodingJobHandler
with transaction.atomic():
    video = Video.objects.create(state=2, directory="vod/x/video/1", baseFilename="1")
    HLSTranscodingJobHandler().create(
        video=video, resolution=240, fps=30, depends_on_runner_job=None, domain="http://x"
    )
"""


@pytest.mark.e2e
def test_job_created_in_another_process_reaches_runners_of_both(two_web_processes, redis_url):
    from marsha_runner.devrunner.client import RunnerClient

    token = runner_make("redis-runner")
    first = RunnerClient(two_web_processes[0], token)
    second = RunnerClient(two_web_processes[1], token)
    first.connect()
    second.connect()
    try:
        assert first.request_jobs() == []
        _relaying([first, second])
        done = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", CREATE_JOB],
            cwd=BASE_DIR,
            env=_env(redis_url),
            capture_output=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr.decode()
        assert first.wait_ping(10), "the runner of process 1 got no available-jobs"
        assert second.wait_ping(10), "the runner of process 2 got no available-jobs"
        jobs = first.request_jobs()
        assert [j["payload"]["output"]["resolution"] for j in jobs] == [240]
    finally:
        first.disconnect()
        second.disconnect()
