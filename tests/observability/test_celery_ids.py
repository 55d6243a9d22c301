"""A request id set where a task is enqueued is the request id of the task's log lines in a
real Celery worker (a message header), with the task's name and id; JSON lines in the worker."""

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.db import connection

from marsha_runner.celery import app as celery_app
from marsha_runner.operations.tasks import operations_command_run
from marsha_runner.telemetry.context import context_bound
from tests.conftest import database_url_of

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]
BASE_DIR = Path(__file__).resolve().parents[2]


def _pools_reset():
    from kombu import pools

    pools.reset()
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture
def real_celery():
    keys = ("CELERY_BROKER_URL", "CELERY_TASK_ALWAYS_EAGER")
    saved = {k: celery_app.conf[k] for k in keys}
    celery_app.conf.update(
        CELERY_BROKER_URL=os.environ["REDIS_URL"], CELERY_TASK_ALWAYS_EAGER=False
    )
    _pools_reset()
    yield
    celery_app.conf.update(saved)
    _pools_reset()


def json_lines(text: str) -> list[dict]:
    """The log lines among what the worker printed (its banner and the command's own JSON
    output on stdout are not log lines)."""
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    return [line for line in lines if "logger" in line]


def test_the_request_id_reaches_the_worker(real_celery, tmp_path):
    queue = f"ids-{uuid.uuid4().hex[:8]}"  # ours alone, whoever else shares this Redis
    log_path = tmp_path / "worker.log"
    env = {
        **os.environ,
        "MARSHA_RUNNER_ENV_FILE": "env.d/test",
        "DATABASE_URL": database_url_of(connection),
        "DATABASE_POOL": "False",
        "CELERY_TASK_ALWAYS_EAGER": "False",
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
    }
    args = [sys.executable, "-m", "celery", "-A", "marsha_runner", "worker", "--pool", "solo"]
    args += ["-Q", queue, "--without-heartbeat", "--without-gossip", "--without-mingle"]
    with log_path.open("w") as log:
        worker = subprocess.Popen(args, cwd=BASE_DIR, env=env, stdout=log, stderr=log)
    try:
        with context_bound(request_id="req-celery-0123456789"):
            operations_command_run.apply_async(args=["health_report"], queue=queue)
        deadline = time.monotonic() + 120
        while True:
            lines = json_lines(log_path.read_text())
            done = [line for line in lines if "Operations command" in line["message"]]
            if done:
                break
            assert worker.poll() is None, log_path.read_text()[-3000:]
            assert time.monotonic() < deadline, log_path.read_text()[-3000:]
            time.sleep(0.2)
    finally:
        worker.terminate()
        worker.wait(timeout=60)
    (line,) = done
    # 2: no runner online in the empty test database (the report asks for a human).
    assert line["message"] == "Operations command health_report exited 2."
    assert line["request_id"] == "req-celery-0123456789"
    assert line["task_name"] == "marsha_runner.operations.tasks.operations_command_run"
    assert uuid.UUID(line["task_id"])
    assert line["level"] == "INFO" and line["logger"] == "marsha_runner.operations.tasks"
    # Celery's own line about the task carries the ids too (its logging left as configured).
    (succeeded,) = [entry for entry in lines if "succeeded in" in entry["message"]]
    assert (succeeded["request_id"], succeeded["task_id"]) == (line["request_id"], line["task_id"])
