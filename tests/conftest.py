"""Shared fixtures: real services when they answer, visible skips outside CI, failures in CI."""

import os
import shutil
import socket
from urllib.parse import urlparse

import pytest

IN_CI = os.environ.get("CI") == "true"


def require(available: bool, reason: str):
    """Skip with a visible reason when a service is absent; in CI, fail instead."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"CI must provide this service: {reason}")
    pytest.skip(reason)


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def url_answers(variable: str, default_port: int) -> bool:
    """Whether the service named by the URL in ``variable`` accepts connections."""
    url = os.environ.get(variable, "")
    parsed = urlparse(url)
    return bool(url) and port_open(parsed.hostname or "127.0.0.1", parsed.port or default_port)


@pytest.fixture(autouse=True)
def _service_marks(request, settings):
    """Turn the service marks into real requirements."""
    marks = {m.name for m in request.node.iter_markers()}
    if "postgres" in marks:
        require(
            settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql",
            "needs PostgreSQL: set DATABASE_URL=postgres://…",
        )
    if "redis" in marks:
        require(
            url_answers("REDIS_URL", 6379), "needs Redis: set REDIS_URL=redis://127.0.0.1:6379/0"
        )
    if "s3" in marks:
        require(
            url_answers("S3_TEST_ENDPOINT", 80),
            "needs SeaweedFS: set S3_TEST_ENDPOINT (make test starts one from the venv)",
        )
    if "ffmpeg" in marks:
        require(
            bool(shutil.which("ffmpeg") and shutil.which("ffprobe")),
            "needs ffmpeg and ffprobe on PATH",
        )
    if "browser" in marks:
        require(os.path.exists("/usr/bin/chromium"), "needs Debian chromium (/usr/bin/chromium)")
    if "speech" in marks:
        # Imported here: faster-whisper takes about 2 s to import, only speech tests need it.
        from marsha_runner.devrunner.whisper import whisper_available

        require(bool(shutil.which("espeak-ng")), "needs Debian's espeak-ng (apt-get install)")
        require(whisper_available(), "needs faster-whisper and its model (make install)")


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """pytest-django's test database, and at the end a check that nothing still holds it.

    A connection left open (a thread's, or one borrowed from the pool in another context and
    never given back) makes PostgreSQL refuse to drop the test database, which pytest-django
    reports as a bare "being accessed by other users" warning. This names each session left
    and its last query, so the leak is found where it is made.
    """
    yield
    from django.db import connection, connections

    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock():
        connections.close_all()
        if hasattr(connection, "close_pool"):
            connection.close_pool()
        left = _sessions_on(connection.settings_dict)
    if left:
        pytest.fail(
            "Sessions still open on the test database at the end of the run (their last "
            "query): " + "; ".join(f"pid {pid} {state}: {query!r}" for pid, state, query in left)
        )


def _sessions_on(conf: dict, *, within: float = 10.0) -> list:
    """Other sessions on the database of ``conf``, waited for up to ``within`` s (a process
    just stopped takes a moment to leave); read from the maintenance database."""
    import time

    import psycopg

    params = {
        "host": conf.get("HOST") or "127.0.0.1",
        "port": conf.get("PORT") or 5432,
        "user": conf.get("USER") or "postgres",
        "password": conf.get("PASSWORD") or None,
        "dbname": "postgres",
    }
    deadline = time.monotonic() + within
    params = {k: v for k, v in params.items() if v is not None}
    with psycopg.connect(**params, autocommit=True) as conn:  # a fresh snapshot per read
        while True:
            rows = conn.execute(
                "SELECT pid, state, left(query, 200) FROM pg_stat_activity WHERE datname = %s",
                [conf["NAME"]],
            ).fetchall()
            if not rows or time.monotonic() > deadline:
                return rows
            time.sleep(0.2)


def database_url_of(connection) -> str:
    """DATABASE_URL of the test database, for a subprocess (manage.py, uvicorn) to share it."""
    from pathlib import Path

    conf = connection.settings_dict
    if conf["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{Path(conf['NAME']).resolve()}"
    user = conf.get("USER") or "postgres"
    password = f":{conf['PASSWORD']}" if conf.get("PASSWORD") else ""
    host = conf.get("HOST") or "127.0.0.1"
    return f"postgres://{user}{password}@{host}:{conf.get('PORT') or 5432}/{conf['NAME']}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def reset_video_storage():
    """Forget Django's cached storages after a settings change (the library's lazy storage
    reads through ours at every use: runners/library_storage.py)."""
    from django.core.files.storage import storages

    storages._storages = {}
    storages.backends  # noqa: B018  (re-read settings.STORAGES)


def reload_urls():
    """The Range-serving route is built from VIDEOS_ROOT at import: rebuild it."""
    import importlib

    from django.urls import clear_url_caches

    import marsha_runner.storage.urls
    import marsha_runner.urls

    importlib.reload(marsha_runner.storage.urls)
    importlib.reload(marsha_runner.urls)
    clear_url_caches()


def use_filesystem_storage(settings, alias: str, root, base_url: str):
    """Point STORAGES[alias] at a folder served with Range under ``base_url``."""
    settings.STORAGES = {
        **settings.STORAGES,
        alias: {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(root), "base_url": base_url},
        },
    }
    reset_video_storage()
    reload_urls()


@pytest.fixture
def videos_root(tmp_path, settings):
    """Video storage on the filesystem under a fresh VIDEOS_ROOT, served with Range."""
    root = tmp_path / "videos"
    root.mkdir()
    settings.VIDEOS_ROOT = str(root)
    settings.STORAGE_BACKEND = "marsha_runner.storage.filesystem"
    use_filesystem_storage(settings, "videos", root, settings.VIDEOS_URL)
    yield root
    reset_video_storage()
    reload_urls()


@pytest.fixture
def legacy_root(tmp_path, settings):
    """The folder standing for the AWS legacy bucket, served with Range under AWS_LEGACY_URL."""
    root = tmp_path / "aws_legacy"
    root.mkdir()
    settings.AWS_LEGACY_ROOT = str(root)
    use_filesystem_storage(settings, "aws_legacy", root, settings.AWS_LEGACY_URL)
    yield root
    reset_video_storage()
    reload_urls()


def public_read(client, bucket: str, *prefixes: str):
    """A bucket policy making ``prefixes`` public-read, as production does for vod/ and aws/."""
    import json

    client.put_bucket_policy(
        Bucket=bucket,
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": "*",
                        "Action": "s3:GetObject",
                        "Resource": [f"arn:aws:s3:::{bucket}/{p}*" for p in prefixes],
                    }
                ],
            }
        ),
    )


@pytest.fixture
def s3_videos(settings):
    """Video storage on the SeaweedFS S3 server, in a fresh bucket."""
    import uuid

    import boto3

    require(bool(os.environ.get("S3_TEST_ENDPOINT")), "needs SeaweedFS: set S3_TEST_ENDPOINT")
    endpoint = os.environ["S3_TEST_ENDPOINT"]
    options = {
        "bucket_name": f"test-{uuid.uuid4().hex[:12]}",
        "endpoint_url": endpoint,
        "region_name": "us-east-1",
        "access_key": os.environ.get("S3_TEST_ACCESS_KEY", ""),
        "secret_key": os.environ.get("S3_TEST_SECRET_KEY", ""),
        "addressing_style": "path",
        "signature_version": "s3v4",
        "querystring_auth": True,
        "file_overwrite": True,
    }
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=options["access_key"],
        aws_secret_access_key=options["secret_key"],
        region_name="us-east-1",
    )
    client.create_bucket(Bucket=options["bucket_name"])
    settings.STORAGE_BACKEND = "marsha_runner.storage.s3"
    settings.STORAGES = {
        **settings.STORAGES,
        "videos": {"BACKEND": "marsha_runner.storage.s3.VideoS3Storage", "OPTIONS": options},
    }
    reset_video_storage()
    yield {"client": client, **options}
    reset_video_storage()


class LiveServer:
    """uvicorn serving marsha_runner.asgi in a thread of the test process, on a free port."""

    def __init__(self):
        import threading

        import uvicorn

        from marsha_runner.asgi import application

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            application, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self):
        import time

        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)

    def stop(self):
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def live_server_url(transactional_db, settings):
    """A real ASGI server (uvicorn + socket.io) on a free port; runners reach it at its URL."""
    server = LiveServer()
    settings.RUNNERS_CALLBACK_DOMAIN = server.url
    settings.ALLOWED_HOSTS = ["*"]
    server.start()
    yield server.url
    server.stop()
    release_server_connections()


def release_server_connections():
    """Close the pool the server's threads borrowed from, so the test database can be dropped."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    if hasattr(connection, "close_pool"):
        connection.close()  # hand ours back first: closing the pool closes what it lent
        connection.close_pool()
