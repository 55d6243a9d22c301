"""jobs/request for a fleet (issue 6): exact answers from batched reads, over a real uvicorn.

The view is async and the ASGI router sends its path past the middleware stack; these tests
call it as runners do, over HTTP, so the router, the reader threads and the batching are the
real ones. Throughput is measured by bench/dispatch.py, not here.
"""

import threading
import time
from datetime import timedelta

import pytest
import requests
from django.utils import timezone
from django_peertube_runner_connector.models import Runner, RunnerJob, RunnerJobState

from tests.runners.factories import job_tree, runner_make

pytestmark = pytest.mark.e2e
PATH = "/api/v1/runners/jobs/request"


def ask(base_url, token, **body):
    return requests.post(base_url + PATH, json={"runnerToken": token, **body}, timeout=10)


def offered(base_url, token):
    response = ask(base_url, token)
    assert response.status_code == 200, response.content
    return {job["uuid"] for job in response.json()["availableJobs"]}


def assert_problem(response, status, code):
    assert response.status_code == status, response.content
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert response.json()["code"] == code


def test_offers_pending_jobs_only_with_the_library_shape(live_server_url):
    token = runner_make("dispatch-a")
    video, parent, children = job_tree()
    response = ask(live_server_url, token, jobTypes=["vod-hls-transcoding"])
    assert response.status_code == 200
    assert response.json() == {
        "availableJobs": [
            {"uuid": str(parent.uuid), "type": parent.type, "payload": parent.payload}
        ]
    }
    # Children wait for their parent; none of another type is asked for.
    assert {str(c.uuid) for c in children}.isdisjoint(offered(live_server_url, token))
    other = ask(live_server_url, token, jobTypes=["video-transcription"])
    assert other.status_code == 200 and other.json() == {"availableJobs": []}


def test_refusals_are_peertubes(live_server_url):
    token = runner_make("dispatch-b")
    base = live_server_url
    assert_problem(ask(base, "ptrt-unknown"), 404, "unknown_runner_token")
    assert_problem(ask(base, ""), 400, "invalid_request")
    missing = requests.post(base + PATH, json={}, timeout=10)
    assert_problem(missing, 400, "invalid_request")
    for job_types in ("vod-hls-transcoding", ["vod-hls-transcoding", "nope"], [3], {"a": 1}):
        refused = ask(base, token, jobTypes=job_types)
        assert_problem(refused, 400, "invalid_request")
    not_json = requests.post(
        base + PATH, data=b"{", headers={"Content-Type": "application/json"}, timeout=10
    )
    assert_problem(not_json, 400, "invalid_request")
    for version in ("1.2", "v1.2.3", 123):
        assert_problem(ask(base, token, version=version), 400, "invalid_request")
    assert ask(base, token, version="1.2.3-rc.1").status_code == 200
    # As every runner call: POST only (the floor of bench/dispatch.py).
    assert requests.get(base + PATH, timeout=10).status_code == 405


def test_the_fast_route_still_checks_allowed_hosts(live_server_url, settings):
    token = runner_make("dispatch-c")
    settings.ALLOWED_HOSTS = ["127.0.0.1"]
    assert ask(live_server_url, token).status_code == 200
    response = requests.post(
        live_server_url + PATH,
        json={"runnerToken": token},
        headers={"Host": "evil.example"},
        timeout=10,
    )
    assert response.status_code == 400


def test_the_fast_route_skips_the_middleware_stack(live_server_url):
    """XFrameOptionsMiddleware marks every answer of the stack; jobs/request is past it."""
    token = runner_make("dispatch-d")
    assert "X-Frame-Options" not in ask(live_server_url, token).headers
    other = requests.post(
        live_server_url + "/api/v1/runners/unregister", json={"runnerToken": "x"}, timeout=10
    )
    assert other.status_code == 404 and other.headers["X-Frame-Options"] == "DENY"


def test_last_contact_written_at_most_every_five_minutes(live_server_url):
    token = runner_make("dispatch-e")
    runner = Runner.objects.get(runnerToken=token)
    recent = timezone.now() - timedelta(minutes=1)
    Runner.objects.filter(pk=runner.pk).update(lastContact=recent, ip="10.0.0.1")
    offered(live_server_url, token)
    runner.refresh_from_db()
    assert (runner.lastContact, runner.ip) == (recent, "10.0.0.1")

    stale = timezone.now() - timedelta(minutes=6)
    Runner.objects.filter(pk=runner.pk).update(lastContact=stale)
    before = timezone.now()
    offered(live_server_url, token)
    runner.refresh_from_db()
    assert runner.lastContact >= before and runner.ip == "127.0.0.1"


def test_exact_under_load(live_server_url):
    """While a fleet keeps asking, a job committed pending is offered to the next call, and a
    job taken out of pending is not: a read never answers a call that arrived after it began.
    """
    tokens = [runner_make(f"dispatch-fleet-{n}") for n in range(8)]
    video, parent, children = job_tree()
    RunnerJob.objects.filter(pk=parent.pk).update(state=RunnerJobState.PROCESSING)
    stop = threading.Event()
    seen = []
    answered = {token: threading.Event() for token in tokens}

    def fleet(token):
        with requests.Session() as session:
            while not stop.is_set():
                response = session.post(
                    live_server_url + PATH, json={"runnerToken": token}, timeout=10
                )
                seen.append(response.status_code)
                answered[token].set()

    threads = [threading.Thread(target=fleet, args=(t,)) for t in tokens]
    for thread in threads:
        thread.start()
    try:
        # The whole fleet is asking (each runner answered once) before the checks begin.
        deadline = time.monotonic() + 30
        for token, event in answered.items():
            assert event.wait(max(0, deadline - time.monotonic())), f"{token} never answered"
        for _ in range(15):
            for child in children:
                RunnerJob.objects.filter(pk=child.pk).update(state=RunnerJobState.PENDING)
                assert str(child.uuid) in offered(live_server_url, tokens[0])
                RunnerJob.objects.filter(pk=child.pk).update(state=RunnerJobState.PROCESSING)
                assert str(child.uuid) not in offered(live_server_url, tokens[0])
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
    assert seen and set(seen) == {200}


@pytest.mark.django_db
def test_django_test_client_sees_its_transaction(client):
    """Called from sync code, the read runs on the caller's thread (its open transaction)."""
    token = runner_make("dispatch-f")
    video, parent, children = job_tree()
    response = client.post(PATH, {"runnerToken": token}, content_type="application/json")
    assert response.status_code == 200
    assert [job["uuid"] for job in response.json()["availableJobs"]] == [str(parent.uuid)]
