"""The runner API answers PeerTube's parameter checks exactly, and a refusal changes nothing.

The table is PeerTube's own (``packages/tests/src/api/check-params/runners.ts``,
docs/design.md#runner-protocol): each line is one call, refused with PeerTube's status (and
code where the runner reads one), and every row of the runner tables is compared before and
after it. Runs through Django's test client with the project's DRF defaults (IsAuthenticated +
throttles): the runner endpoints must not inherit them (docs/design.md#inherited-defaults).
"""

import uuid

import pytest
from django_peertube_runner_connector.models import (
    Runner,
    RunnerJob,
    RunnerJobState,
    RunnerRegistrationToken,
)

from tests.runners.factories import REGISTRATION_TOKEN, job_tree, runner_make

pytestmark = pytest.mark.django_db
API = "/api/v1/runners"
JOBS = f"{API}/jobs"
# Each job call with the fields it needs to pass its own checks.
JOB_CALLS = {
    "update": {"progress": 5},
    "success": {},
    "error": {"message": "boom"},
    "abort": {"reason": "gave up"},
}


def post(client, path, data, **kwargs):
    return client.post(path, data, content_type="application/json", **kwargs)


def accept(client, job, runner_token) -> str:
    response = post(client, f"{JOBS}/{job.uuid}/accept", {"runnerToken": runner_token})
    assert response.status_code == 200, response.content
    return response.json()["job"]["jobToken"]


@pytest.fixture
def world(client):
    """Runner a processes ``job`` (child waiting) and finished ``done``; runner b processes
    ``job2`` of another video."""
    a, b = runner_make("runner-a"), runner_make("runner-b")
    video, job, children = job_tree()
    _, job2, _ = job_tree(resolutions=(480,))
    _, done, _ = job_tree(resolutions=(240,))
    token, token2, done_token = (
        accept(client, job, a),
        accept(client, job2, b),
        accept(client, done, a),
    )
    # Completed as PeerTube leaves it: the job token stays on the row.
    RunnerJob.objects.filter(pk=done.pk).update(state=RunnerJobState.COMPLETED)
    return {
        "a": a,
        "b": b,
        "video": video,
        "job": job,
        "child": children[0],
        "token": token,
        "job2": job2,
        "token2": token2,
        "done": done,
        "done_token": done_token,
    }


def rows():
    """Every row of the runner tables, as stored."""
    return (
        list(RunnerJob.objects.order_by("pk").values()),
        list(Runner.objects.order_by("pk").values()),
        list(RunnerRegistrationToken.objects.order_by("pk").values()),
    )


def assert_problem(response, status, code=None):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["status"] == status
    assert set(body) >= {"type", "title", "status", "detail", "code"}
    assert response["Content-Type"].startswith("application/problem+json")
    if code:
        assert body["code"] == code


# --- the table --------------------------------------------------------------------------------
# A case is (id, request builder, status, code): the builder takes the world and answers
# (path, JSON body).


def _job_body(w, call, **change):
    body = {"runnerToken": w["a"], "jobToken": w["token"], **JOB_CALLS.get(call, {}), **change}
    return {k: v for k, v in body.items() if v is not None}


def _job_call(call, *, job="job", job_uuid=None, **change):
    def build(w):
        target = job_uuid or w[job].uuid
        body = _job_body(w, call, **change)
        if call == "source":
            video = w["video"].uuid
            return f"{JOBS}/files/videos/{video}/{target}/max-quality", body
        return f"{JOBS}/{target}/{call}", body

    return build


ALL_JOB_CALLS = [*JOB_CALLS, "source"]
CASES = []
for _call in ALL_JOB_CALLS:
    CASES += [
        (f"{_call}: malformed job uuid", _job_call(_call, job_uuid="a"), 400, None),
        (f"{_call}: unknown job uuid", _job_call(_call, job_uuid=uuid.uuid4()), 404, None),
        (
            f"{_call}: unknown runner token",
            _job_call(_call, runnerToken="ptrt-nobody"),
            404,
            "unknown_runner_token",
        ),
        (f"{_call}: unknown job token", _job_call(_call, jobToken="ptrjt-forged"), 404, None),
        (
            f"{_call}: another runner's token",
            _job_call(_call, runnerToken="ptrt-runner-b"),
            404,
            None,
        ),
        (f"{_call}: job uuid of another job token", _job_call(_call, job="job2"), 404, None),
        (
            f"{_call}: job token of another job",
            lambda w, c=_call: _job_call(c, jobToken=w["token2"])(w),
            404,
            None,
        ),
        (f"{_call}: waiting child", _job_call(_call, job="child"), 404, None),
        (f"{_call}: missing runner token", _job_call(_call, runnerToken=None), 400, None),
        (f"{_call}: empty runner token", _job_call(_call, runnerToken=""), 400, None),
        (f"{_call}: missing job token", _job_call(_call, jobToken=None), 400, None),
        (f"{_call}: empty job token", _job_call(_call, jobToken=""), 400, None),
    ]
for _call in ("success", "error", "abort"):
    CASES.append(
        (
            f"{_call}: job not processing",
            lambda w, c=_call: _job_call(c, job="done", jobToken=w["done_token"])(w),
            400,
            "runner_job_not_in_processing_state",
        )
    )
CASES += [
    (
        "update: job not processing",
        lambda w: _job_call("update", job="done", jobToken=w["done_token"])(w),
        404,
        None,
    ),
    ("error: without message", _job_call("error", message=None), 400, None),
    ("error: empty message", _job_call("error", message=""), 400, None),
    ("error: message over 5,000", _job_call("error", message="a" * 5001), 400, None),
    ("abort: without reason", _job_call("abort", reason=None), 400, None),
    ("abort: reason over 5,000", _job_call("abort", reason="reason" * 5000), 400, None),
    ("update: progress 101", _job_call("update", progress=101), 400, None),
    ("update: progress -1", _job_call("update", progress=-1), 400, None),
    ("update: progress not a number", _job_call("update", progress="abc"), 400, None),
    ("update: progress not an integer", _job_call("update", progress=42.5), 400, None),
    ("update: progress a list", _job_call("update", progress=[1]), 400, None),
    ("success: JSON without files", _job_call("success"), 400, None),
]


def _accept(job="child", job_uuid=None, **change):
    def build(w):
        body = {k: v for k, v in {"runnerToken": w["a"], **change}.items() if v is not None}
        return f"{JOBS}/{job_uuid or w[job].uuid}/accept", body

    return build


CASES += [
    ("accept: malformed job uuid", _accept(job_uuid="a"), 400, None),
    ("accept: unknown job uuid", _accept(job_uuid=uuid.uuid4()), 404, None),
    ("accept: missing runner token", _accept(runnerToken=None), 400, None),
    ("accept: empty runner token", _accept(runnerToken=""), 400, None),
    ("accept: unknown runner token", _accept(runnerToken="ptrt-x"), 404, "unknown_runner_token"),
    ("accept: processing", _accept(job="job"), 400, "runner_job_not_in_pending_state"),
    ("accept: waiting", _accept(job="child"), 400, "runner_job_not_in_pending_state"),
    ("accept: completed", _accept(job="done"), 400, "runner_job_not_in_pending_state"),
]


def _request(**change):
    def build(w):
        body = {"runnerToken": w["a"], "jobTypes": ["vod-hls-transcoding"], **change}
        return f"{JOBS}/request", {k: v for k, v in body.items() if v is not None}

    return build


CASES += [
    ("request: missing runner token", _request(runnerToken=None), 400, None),
    ("request: empty runner token", _request(runnerToken=""), 400, None),
    ("request: unknown runner token", _request(runnerToken="ptrt-x"), 404, "unknown_runner_token"),
    ("request: jobTypes a string", _request(jobTypes="toto"), 400, None),
    ("request: jobTypes of numbers", _request(jobTypes=[42]), 400, None),
    ("request: unknown job type", _request(jobTypes=["vod-nothing"]), 400, None),
    ("request: malformed version", _request(version="invalid"), 400, None),
    ("request: empty version", _request(version=""), 400, None),
]


def _register(**change):
    def build(w):
        body = {"registrationToken": REGISTRATION_TOKEN, "name": "new", "description": "d"}
        body = {k: v for k, v in {**body, **change}.items() if v is not None}
        return f"{API}/register", body

    return build


def _unregister(**change):
    def build(w):
        body = {k: v for k, v in {"runnerToken": w["a"], **change}.items() if v is not None}
        return f"{API}/unregister", body

    return build


CASES += [
    ("register: unknown registration token", _register(registrationToken="aaa"), 404, None),
    ("register: missing registration token", _register(registrationToken=None), 400, None),
    ("register: registration token 4,000", _register(registrationToken="a" * 4000), 400, None),
    ("register: empty name", _register(name=""), 400, None),
    ("register: missing name", _register(name=None), 400, None),
    ("register: name 200", _register(name="a" * 200), 400, None),
    ("register: name taken", _register(name="runner-a"), 400, None),
    ("register: empty description", _register(description=""), 400, None),
    ("register: description 5,000", _register(description="a" * 5000), 400, None),
    ("register: empty version", _register(version=""), 400, None),
    ("register: version 5,000", _register(version="a" * 5000), 400, None),
    ("unregister: missing runner token", _unregister(runnerToken=None), 400, None),
    ("unregister: empty runner token", _unregister(runnerToken=""), 400, None),
    ("unregister: unknown runner token", _unregister(runnerToken="ptrt-x"), 404, None),
]


@pytest.mark.parametrize(
    "build,status,code", [pytest.param(*case[1:], id=case[0]) for case in CASES]
)
def test_refused_exactly_and_nothing_changes(client, world, build, status, code):
    path, body = build(world)
    before = rows()
    assert_problem(post(client, path, body), status, code)
    assert rows() == before


def test_every_call_of_the_table_is_covered():
    """One line per PeerTube check and call: a call added without its lines fails here."""
    ids = [case[0] for case in CASES]
    assert len(ids) == len(set(ids))
    for call in ALL_JOB_CALLS:
        assert sum(i.startswith(f"{call}:") for i in ids) >= 12
    for call in ("accept", "request", "register", "unregister"):
        assert any(i.startswith(f"{call}:") for i in ids)


# --- the same refusals through multipart (how success arrives) --------------------------------


@pytest.mark.parametrize(
    "files", [{}, {"payload[videoFile]": "text"}, {"payload[resolutionPlaylistFile]": "x"}]
)
def test_success_without_files_is_400_and_job_stays_processing(client, world, files):
    from django.core.files.uploadedfile import SimpleUploadedFile

    before = rows()
    data = {"runnerToken": world["a"], "jobToken": world["token"], **files}
    if "payload[resolutionPlaylistFile]" in files:
        data["payload[videoFile]"] = SimpleUploadedFile("a.mp4", b"x")
    response = client.post(f"{JOBS}/{world['job'].uuid}/success", data)  # multipart
    assert_problem(response, 400, "invalid_request")
    assert rows() == before


def test_bad_json_body_is_400(client, world):
    before = rows()
    response = client.post(
        f"{JOBS}/{world['job'].uuid}/error", "{not json", content_type="application/json"
    )
    assert_problem(response, 400, "invalid_request")
    response = post(client, f"{JOBS}/{world['job'].uuid}/error", ["a list"])
    assert_problem(response, 400, "invalid_request")
    assert rows() == before


# --- what is accepted -------------------------------------------------------------------------


def test_update_progress(client, world):
    body = {"runnerToken": world["a"], "jobToken": world["token"], "progress": 42}
    assert post(client, f"{JOBS}/{world['job'].uuid}/update", body).status_code == 204
    world["job"].refresh_from_db()
    assert (world["job"].progress, world["job"].state) == (42, RunnerJobState.PROCESSING)
    body["progress"] = "43"  # form bodies send strings
    assert post(client, f"{JOBS}/{world['job'].uuid}/update", body).status_code == 204
    body.pop("progress")
    assert post(client, f"{JOBS}/{world['job'].uuid}/update", body).status_code == 204
    world["job"].refresh_from_db()
    assert world["job"].progress == 43


def test_error_counts_and_requeues_then_old_token_is_unknown(client, world):
    body = {"runnerToken": world["a"], "jobToken": world["token"], "message": "ffmpeg died"}
    assert post(client, f"{JOBS}/{world['job'].uuid}/error", body).status_code == 204
    job = world["job"]
    job.refresh_from_db()
    assert (job.state, job.failures, job.processingJobToken) == (RunnerJobState.PENDING, 1, None)
    # PeerTube: the job token was reset with the job, so the job is unknown to it now.
    before = rows()
    assert_problem(post(client, f"{JOBS}/{job.uuid}/error", body), 404)
    assert rows() == before


def test_abort_counts_and_requeues(client, world):
    body = {"runnerToken": world["a"], "jobToken": world["token"], "reason": "shutting down"}
    assert post(client, f"{JOBS}/{world['job'].uuid}/abort", body).status_code == 204
    world["job"].refresh_from_db()
    assert (world["job"].state, world["job"].failures) == (RunnerJobState.PENDING, 1)


def test_accept_gives_a_token_and_the_job(client, world):
    body = {"runnerToken": world["b"], "jobTypes": ["vod-hls-transcoding"]}
    RunnerJob.objects.filter(pk=world["child"].pk).update(state=RunnerJobState.PENDING)
    offered = post(client, f"{JOBS}/request", body).json()["availableJobs"]
    assert [j["uuid"] for j in offered] == [str(world["child"].uuid)]
    response = post(client, f"{JOBS}/{world['child'].uuid}/accept", {"runnerToken": world["b"]})
    assert response.status_code == 200
    job = response.json()["job"]
    assert job["jobToken"].startswith("ptrjt-") and job["uuid"] == str(world["child"].uuid)
    assert job["payload"]["output"]["resolution"] == 360
    world["child"].refresh_from_db()
    assert world["child"].state == RunnerJobState.PROCESSING
    assert world["child"].runner.name == "runner-b"


def test_request_lists_pending_jobs_despite_drf_defaults(client, world, settings):
    assert "IsAuthenticated" in settings.REST_FRAMEWORK["DEFAULT_PERMISSION_CLASSES"][0]
    for body in (
        {"runnerToken": world["b"], "jobTypes": ["vod-hls-transcoding"], "version": "0.0.16"},
        {"runnerToken": world["b"], "jobTypes": [], "version": "6.1.0-rc.1"},
        {"runnerToken": world["b"]},
    ):
        response = post(client, f"{JOBS}/request", body)
        assert response.status_code == 200, body
        assert response.json() == {"availableJobs": []}  # processing, waiting, completed


def test_register_and_unregister(client, db):
    runner_make("seeded")
    body = {
        "registrationToken": REGISTRATION_TOKEN,
        "name": "fresh",
        "description": "d",
        "version": "0.0.16",
    }
    response = post(client, f"{API}/register", body)
    assert response.status_code == 200
    token = response.json()["runnerToken"]
    assert token.startswith("ptrt-")
    assert Runner.objects.filter(name="fresh", runnerToken=token).exists()
    assert post(client, f"{API}/unregister", {"runnerToken": token}).status_code == 204
    assert not Runner.objects.filter(name="fresh").exists()
    assert_problem(post(client, f"{API}/unregister", {"runnerToken": token}), 404)


def test_unregister_puts_its_jobs_back_to_pending(client, world):
    assert post(client, f"{API}/unregister", {"runnerToken": world["a"]}).status_code == 204
    job = RunnerJob.objects.get(pk=world["job"].pk)
    assert (job.state, job.runner, job.processingJobToken) == (RunnerJobState.PENDING, None, None)
    assert job.failures == 0
    assert RunnerJob.objects.get(pk=world["done"].pk).state == RunnerJobState.COMPLETED


def test_only_post_and_only_anchored_routes(client, world):
    assert client.get(f"{JOBS}/request").status_code == 405
    response = post(client, "/foo/api/v1/runners/jobs/request", {"runnerToken": world["a"]})
    assert response.status_code == 404
    # Nothing else of the library's viewsets is published (e.g. its list or detail routes).
    for path in (f"{JOBS}", f"{JOBS}/{world['job'].uuid}", f"{API}", f"{API}/jobs/"):
        assert post(client, path, {"runnerToken": world["a"]}).status_code == 404


class TestDownload:
    def url(self, world, video_uuid=None):
        video_uuid = video_uuid or world["video"].uuid
        return f"{JOBS}/files/videos/{video_uuid}/{world['job'].uuid}/max-quality"

    def test_redirects_302_to_the_source(self, client, videos_root, world):
        body = {"runnerToken": world["a"], "jobToken": world["token"]}
        response = post(client, self.url(world), body)
        assert response.status_code == 302
        assert response["Location"] == "http://testserver/videos/tmp/abc/video/1"
        assert world["job"].payload["input"]["videoFileUrl"].endswith(self.url(world))

    def test_form_body_works_too(self, client, videos_root, world):
        body = {"runnerToken": world["a"], "jobToken": world["token"]}
        assert client.post(self.url(world), body).status_code == 302

    def test_job_of_another_video(self, client, videos_root, world):
        body = {"runnerToken": world["a"], "jobToken": world["token"]}
        response = post(client, self.url(world, video_uuid=uuid.uuid4()), body)
        assert_problem(response, 404)
        assert_problem(post(client, self.url(world, video_uuid="junk"), body), 400)


# --- socket.io: /runners refuses strangers -----------------------------------------------------


@pytest.mark.e2e
@pytest.mark.parametrize("auth", [None, {}, {"runnerToken": ""}, {"runnerToken": "ptrt-nobody"}])
def test_socket_refuses_missing_or_unknown_tokens(live_server_url, auth):
    import socketio

    sio = socketio.Client(reconnection=False)
    refused = "^One or more namespaces failed to connect: /runners$"  # not a transport failure
    with pytest.raises(socketio.exceptions.ConnectionError, match=refused):
        sio.connect(
            live_server_url,
            namespaces=["/runners"],
            transports=["websocket"],
            auth=auth,
            wait_timeout=5,
        )
    assert not sio.connected


@pytest.mark.e2e
def test_socket_accepts_a_known_runner(live_server_url):
    from marsha_runner.devrunner.client import RunnerClient

    token = runner_make("socket-runner")
    client = RunnerClient(live_server_url, token)
    client.connect()
    try:
        assert client._sio.connected
        assert "/runners" in client._sio.namespaces
    finally:
        client.disconnect()
