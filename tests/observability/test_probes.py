"""/healthz (no I/O) and /readyz (database, Redis, storage): 503 naming what failed while our
own Redis or our own SeaweedFS is stopped, 200 again once it is back."""

import time

import pytest
import requests

from tests.conftest import reset_video_storage
from tests.outages.harness import Weed, redis_server  # noqa: F401 - the fixture

pytestmark = pytest.mark.django_db(transaction=True)


def test_healthz_answers_without_touching_anything(client, django_assert_num_queries, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there: never reached
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["Cache-Control"].startswith("max-age=0")


def test_readyz_names_each_check(client, settings):
    settings.REDIS_URL = ""  # no Redis in this deployment: not checked
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ready"
    assert body["failed"] == []
    assert sorted(body["checks"]) == ["database", "storage"]
    assert all(check["ok"] for check in body["checks"].values())


def wait_for_readyz(live_server_url, status: int, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        response = requests.get(f"{live_server_url}/readyz", timeout=30)
        if response.status_code == status:
            return response.json()
        assert time.monotonic() < deadline, (status, response.status_code, response.text)
        time.sleep(0.2)


@pytest.mark.e2e
def test_readyz_follows_our_own_redis(live_server_url, redis_server, settings):  # noqa: F811
    settings.REDIS_URL = redis_server.url
    settings.READINESS_TIMEOUT = 1.0
    assert wait_for_readyz(live_server_url, 200)["checks"]["redis"]["ok"] is True

    redis_server.stop()
    started = time.monotonic()
    body = wait_for_readyz(live_server_url, 503)
    assert body["status"] == "unavailable"
    assert body["failed"] == ["redis"]
    assert body["checks"]["redis"]["error"] in ("ConnectionError", "TimeoutError", "timeout")
    assert time.monotonic() - started < 10  # the short timeout, not a hang

    redis_server.start()
    assert wait_for_readyz(live_server_url, 200)["failed"] == []


@pytest.mark.e2e
def test_readyz_follows_our_own_seaweedfs(live_server_url, settings, tmp_path):
    server = Weed(tmp_path)
    try:
        server.start()
        bucket = "readyz"
        server.client().create_bucket(Bucket=bucket)
        options = {
            "bucket_name": bucket,
            "endpoint_url": server.endpoint,
            "region_name": "us-east-1",
            "access_key": server.access_key,
            "secret_key": server.secret_key,
            "addressing_style": "path",
            "signature_version": "s3v4",
        }
        settings.STORAGES = {
            **settings.STORAGES,
            "videos": {"BACKEND": "marsha_runner.storage.s3.VideoS3Storage", "OPTIONS": options},
        }
        settings.REDIS_URL = ""
        settings.READINESS_TIMEOUT = 1.0
        reset_video_storage()
        assert wait_for_readyz(live_server_url, 200)["checks"]["storage"]["ok"] is True

        server.stop()
        body = wait_for_readyz(live_server_url, 503)
        assert body["failed"] == ["storage"]
        assert body["checks"]["database"]["ok"] is True
        # The class name only: no endpoint, key or credential in the answer.
        assert server.secret_key not in str(body) and server.access_key not in str(body)

        server.start()
        assert wait_for_readyz(live_server_url, 200)["failed"] == []
    finally:
        server.stop()
        reset_video_storage()


def test_probes_answer_any_host_without_https_redirect(live_server_url, settings):
    """A kubelet calls the pod by its IP address over plain HTTP: no ALLOWED_HOSTS 400, no
    redirect to HTTPS (the rest of the site still checks both)."""
    settings.ALLOWED_HOSTS = ["example.org"]
    settings.SECURE_SSL_REDIRECT = True
    settings.REDIS_URL = ""
    headers = {"Host": "10.1.2.3:8000"}
    for path in ("/healthz", "/readyz"):
        response = requests.get(f"{live_server_url}{path}", headers=headers, timeout=30)
        assert response.status_code == 200, (path, response.status_code, response.text)
    admin = requests.get(
        f"{live_server_url}/admin/", headers=headers, timeout=30, allow_redirects=False
    )
    assert admin.status_code == 400
