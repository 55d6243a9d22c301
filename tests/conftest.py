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
        url = os.environ.get("REDIS_URL", "")
        parsed = urlparse(url)
        require(
            bool(url) and port_open(parsed.hostname or "127.0.0.1", parsed.port or 6379),
            "needs Redis: set REDIS_URL=redis://127.0.0.1:6379/0",
        )
    if "s3" in marks:
        endpoint = os.environ.get("S3_TEST_ENDPOINT", "")
        parsed = urlparse(endpoint)
        require(
            bool(endpoint) and port_open(parsed.hostname or "127.0.0.1", parsed.port or 80),
            "needs SeaweedFS: set S3_TEST_ENDPOINT (started by .ci/run)",
        )
    if "ffmpeg" in marks:
        require(
            bool(shutil.which("ffmpeg") and shutil.which("ffprobe")),
            "needs ffmpeg and ffprobe on PATH",
        )
    if "browser" in marks:
        require(os.path.exists("/usr/bin/chromium"), "needs Debian chromium (/usr/bin/chromium)")
