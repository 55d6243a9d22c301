"""PostgreSQL restarted during a transcoding (issue 15, point 6), on a cluster of the test's own.

The whole production layout runs in processes of its own, all on that cluster: uvicorn (its
psycopg pool), a Celery worker on a Redis of the test's own, and the dev runner client. The
cluster stops while the runner transcodes and starts again ``FAULT_PG_DOWN`` seconds later
(default 6; the issue's 20 with ``FAULT_PG_DOWN=20``). Expected: the runner's calls meanwhile
get 503 and it retries them; pooled connections are replaced (no request fails after the
restart); socket.io and Celery go on (a second upload after the restart is launched by the
same worker); the video is ready, nothing is duplicated (one job per rendition, one rendition
row each, the host told once).
"""

import os
import re
import subprocess
import time

import pytest
import requests

from marsha_runner.devrunner.client import RunnerClient
from tests.conftest import free_port, port_open
from tests.videos.media import make_clip

from .conftest import report
from .harness import BASE_DIR, Outage, Postgres, Redis, python, wait_until

pytestmark = [pytest.mark.ffmpeg, pytest.mark.e2e, pytest.mark.outage]
DOWN = float(os.environ.get("FAULT_PG_DOWN", "6"))
DATABASE = "marsha"
USER, PASSWORD = "uploader", "uploader-password-1"
CREATE_USER = (
    "from django.contrib.auth.models import Permission, User; "
    f"u = User.objects.create_user({USER!r}, password={PASSWORD!r}); "
    "u.user_permissions.add(Permission.objects.get(codename='change_video', "
    "content_type__app_label='videos'))"
)


@pytest.fixture
def layout(tmp_path):
    """Own PostgreSQL and Redis, migrated; uvicorn and a Celery worker on them; stopped after."""
    services = tmp_path / "services"
    services.mkdir()
    postgres = Postgres(services)
    postgres.start()
    redis = Redis(services)
    redis.start()
    postgres.sql("postgres", f"CREATE DATABASE {DATABASE}")
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "S3_TEST"))},
        "MARSHA_RUNNER_ENV_FILE": "env.d/test",
        "DATABASE_URL": postgres.url(DATABASE),
        "DATABASE_POOL_TIMEOUT": "3",
        "REDIS_URL": redis.url,
        "CELERY_TASK_ALWAYS_EAGER": "False",
        "STORAGE_BACKEND": "marsha_runner.storage.filesystem",
        "VIDEOS_STORAGE": "filesystem",
        "VIDEOS_ROOT": str(tmp_path / "videos"),
        "RUNNERS_COMPLETION_SPOOL": str(tmp_path / "completions"),
        "RUNNERS_COMPLETION_RETRY_DELAYS": "0.5,1",
        "RUNNERS_CALLBACK_DOMAIN": f"http://127.0.0.1:{port}",
        "OUTAGE_RETRY_AFTER": "1",
        "DJANGO_DEBUG": "True",  # the dev runner tokens of env.d/peertube_runner
        "LOG_LEVEL": "INFO",
        "TRANSCODING_RESOLUTIONS_240P": "True",
        "TRANSCODING_RESOLUTIONS_360P": "True",
    }
    manage = [python(), str(BASE_DIR / "manage.py")]
    for command in (["migrate", "-v0"], ["seed_runner"], ["shell", "-c", CREATE_USER]):
        subprocess.run([*manage, *command], env=env, cwd=BASE_DIR, check=True, timeout=300,
                       capture_output=True)  # fmt: skip
    logs = {name: open(tmp_path / f"{name}.log", "wb") for name in ("web", "worker")}  # noqa: SIM115
    web = subprocess.Popen(
        [python(), "-m", "uvicorn", "marsha_runner.asgi:application", "--host", "127.0.0.1",
         "--port", str(port)],
        env=env, cwd=BASE_DIR, stdout=logs["web"], stderr=subprocess.STDOUT,
    )  # fmt: skip
    worker = subprocess.Popen(
        [python(), "-m", "celery", "-A", "marsha_runner", "worker", "--pool", "solo",
         "--loglevel", "INFO"],
        env=env, cwd=BASE_DIR, stdout=logs["worker"], stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_until(lambda: port_open("127.0.0.1", port), timeout=60, what="uvicorn")
        yield {
            "url": f"http://127.0.0.1:{port}",
            "postgres": postgres,
            "logs": tmp_path,
            "env": env,
        }
    finally:
        for process in (web, worker):
            process.terminate()
            process.wait(timeout=30)
        for handle in logs.values():
            handle.close()
        redis.stop()
        postgres.remove()


def _session(base_url: str) -> requests.Session:
    token = requests.post(
        f"{base_url}/api/token/", json={"username": USER, "password": PASSWORD}, timeout=30
    )
    assert token.status_code == 200, token.text
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token.json()['access']}"
    return session


def _upload(base_url, session, tmp_path, *, height: int) -> str:
    api = f"{base_url}/api/videos"
    clip = make_clip(tmp_path / f"clip-{height}.mp4", height=height, fps=25, seconds=2)
    video_id = session.post(f"{api}/", json={"title": "restart"}, timeout=30).json()["id"]
    upload = session.post(
        f"{api}/{video_id}/initiate-upload/",
        json={"filename": "clip.mp4", "mimetype": "video/mp4", "size": clip.stat().st_size},
        timeout=30,
    ).json()
    with open(clip, "rb") as handle:
        posted = requests.post(
            upload["url"], data=upload["fields"],
            files={"file": ("clip.mp4", handle, "video/mp4")}, timeout=60,
        )  # fmt: skip
    assert posted.status_code in (200, 201, 204), posted.text
    ended = session.post(
        f"{api}/{video_id}/upload-ended/", json={"file_key": upload["fields"]["key"]}, timeout=60
    )
    assert ended.status_code == 200, ended.text
    return video_id


def _state(postgres, video_id) -> str:
    rows = postgres.sql(
        DATABASE, "SELECT upload_state, upload_error_reason FROM videos_video WHERE id = %s",
        video_id,
    )  # fmt: skip
    state, reason = rows[0]
    assert state != "error", reason
    return state


def _renditions(postgres, video_id) -> tuple[list, list]:
    """(resolution of each rendition row, failures of each job) of the video's transcoding."""
    rows = postgres.sql(
        DATABASE,
        "SELECT f.resolution FROM django_peertube_runner_connector_videofile f "
        "JOIN django_peertube_runner_connector_video v ON v.id = f.video_id "
        'WHERE v.directory LIKE %s AND f."streamingPlaylist_id" IS NOT NULL '
        "ORDER BY f.resolution",
        f"vod/{video_id}/%",
    )
    jobs = postgres.sql(
        DATABASE,
        "SELECT failures FROM django_peertube_runner_connector_runnerjob "
        "WHERE \"privatePayload\"->>'videoUUID' IN (SELECT uuid::text FROM "
        "django_peertube_runner_connector_video WHERE directory LIKE %s)",
        f"vod/{video_id}/%",
    )
    return [r[0] for r in rows], [j[0] for j in jobs]


class RestartAtSuccess(RunnerClient):
    """A runner whose first result is sent while PostgreSQL restarts."""

    outage = None

    def __init__(self, *args, postgres, **kwargs):
        super().__init__(*args, **kwargs)
        self.postgres = postgres

    def success(self, job, video_file, playlist_file):
        with self._lock:
            if self.outage is None:
                self.outage = Outage(self.postgres)
                self.outage.end_after(DOWN)
        super().success(job, video_file, playlist_file)


def test_postgresql_restart_during_a_transcoding(layout, tmp_path):
    base_url, postgres = layout["url"], layout["postgres"]
    session = _session(base_url)
    video_id = _upload(base_url, session, tmp_path, height=360)
    wait_until(
        lambda: postgres.sql(DATABASE, "SELECT launched_stamp FROM videos_video WHERE id = %s",
                             video_id)[0][0],
        timeout=60, what="the worker launched the first upload",
    )  # fmt: skip
    (tmp_path / "runner").mkdir()
    runner = RestartAtSuccess(
        base_url,
        _dev_runner_token(),
        workdir=tmp_path / "runner",
        postgres=postgres,
        outage_tolerance=120,
    )
    runner.run_until_idle(timeout=240, idle=5)
    assert runner.outage is not None and runner.outage.ended is not None
    wait_until(lambda: _state(postgres, video_id) == "ready", timeout=60, what="ready")
    ready_after = time.monotonic() - runner.outage.ended
    assert runner.statuses[503] >= 1, runner.statuses  # the runner was told to wait
    assert not [s for s in runner.statuses if s >= 500 and s != 503], runner.statuses
    assert runner.failed == []
    rows, failures = _renditions(postgres, video_id)
    assert rows == [240, 360]  # one row per resolution
    assert failures == [0, 0]  # one job per rendition, no failure counted

    # After the restart: a new upload goes through the same web process and Celery worker.
    second = _upload(base_url, session, tmp_path, height=240)
    runner.run_until_idle(timeout=240, idle=3)
    wait_until(lambda: _state(postgres, second) == "ready", timeout=60, what="second ready")
    assert _renditions(postgres, second) == ([240], [0])

    web_log = (layout["logs"] / "web.log").read_text(errors="replace")
    ready_lines = re.findall(rf"Video {video_id} stamp \d+: ready", web_log)
    assert len(ready_lines) == 1, web_log[-3000:]  # the host told once
    assert not re.search(r'HTTP/1\.1" 5(?!03)\d\d', web_log), web_log[-3000:]  # no 500
    report("runner success (completion)", "PostgreSQL restart", "503, the runner retries",
           ready_after)  # fmt: skip


def _dev_runner_token() -> str:
    text = (BASE_DIR / "env.d" / "peertube_runner").read_text()
    return re.search(r"^PEERTUBE_RUNNER_TOKEN=(\S+)", text, re.MULTILINE)[1]
