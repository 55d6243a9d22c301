"""The hardened runner API: who may do what to which job, and nothing changes when refused.

Runs through Django's test client with the project's DRF defaults (IsAuthenticated +
throttles): the runner endpoints must not inherit them (DESIGN §7.9).
"""

import uuid

import pytest
from django_peertube_runner_connector.models import Runner, RunnerJobState

from tests.runners.factories import REGISTRATION_TOKEN, job_tree, runner_make, snapshot

pytestmark = pytest.mark.django_db
JOBS = "/api/v1/runners/jobs"


@pytest.fixture
def world(client):
    token_a, token_b = runner_make("runner-a"), runner_make("runner-b")
    video, parent, children = job_tree()
    response = client.post(
        f"{JOBS}/{parent.uuid}/accept", {"runnerToken": token_a}, content_type="application/json"
    )
    assert response.status_code == 200
    job_token = response.json()["job"]["jobToken"]
    parent.refresh_from_db()
    return {
        "a": token_a,
        "b": token_b,
        "video": video,
        "job": parent,
        "child": children[0],
        "job_token": job_token,
    }


def post(client, path, data, **kwargs):
    return client.post(path, data, content_type="application/json", **kwargs)


def assert_problem(response, status, code):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code
    assert body["status"] == status
    assert set(body) >= {"type", "title", "status", "detail", "code"}
    assert response["Content-Type"].startswith("application/problem+json")


JOB_CALLS = ["update", "success", "error", "abort"]


def _call(client, world, call, body, job=None):
    job = job or world["job"]
    return post(client, f"{JOBS}/{job.uuid}/{call}", body)


@pytest.mark.parametrize("call", JOB_CALLS)
def test_unknown_runner_token(client, world, call):
    before = snapshot(world["job"])
    body = {"runnerToken": "ptrt-nobody", "jobToken": world["job_token"], "progress": 5}
    assert_problem(_call(client, world, call, body), 404, "unknown_runner_token")
    assert snapshot(world["job"]) == before


@pytest.mark.parametrize("call", JOB_CALLS)
def test_another_runners_job(client, world, call):
    before = snapshot(world["job"])
    body = {"runnerToken": world["b"], "jobToken": world["job_token"], "progress": 5}
    assert_problem(_call(client, world, call, body), 403, "runner_job_not_owned")
    assert snapshot(world["job"]) == before


@pytest.mark.parametrize("call", JOB_CALLS)
def test_wrong_job_token(client, world, call):
    before = snapshot(world["job"])
    body = {"runnerToken": world["a"], "jobToken": "ptrjt-forged", "progress": 5}
    assert_problem(_call(client, world, call, body), 403, "invalid_job_token")
    assert snapshot(world["job"]) == before


@pytest.mark.parametrize("call", JOB_CALLS)
@pytest.mark.parametrize("missing", ["runnerToken", "jobToken"])
def test_missing_tokens(client, world, call, missing):
    before = snapshot(world["job"])
    body = {"runnerToken": world["a"], "jobToken": world["job_token"]}
    del body[missing]
    assert_problem(_call(client, world, call, body), 400, "invalid_request")
    assert snapshot(world["job"]) == before


@pytest.mark.parametrize("call", JOB_CALLS)
def test_wrong_state(client, world, call):
    """The job went back to pending (runner error): its old token is worth nothing."""
    body = {"runnerToken": world["a"], "jobToken": world["job_token"], "message": "boom"}
    assert _call(client, world, "error", body).status_code == 204
    job = world["job"]
    job.refresh_from_db()
    assert (job.state, job.failures) == (RunnerJobState.PENDING, 1)
    before = snapshot(job)
    assert_problem(_call(client, world, call, body), 409, "runner_job_not_in_processing_state")
    assert snapshot(job) == before


@pytest.mark.parametrize("call", JOB_CALLS)
def test_waiting_child_is_not_anyones(client, world, call):
    before = snapshot(world["child"])
    body = {"runnerToken": world["a"], "jobToken": world["job_token"]}
    response = _call(client, world, call, body, job=world["child"])
    assert_problem(response, 403, "runner_job_not_owned")
    assert snapshot(world["child"]) == before


@pytest.mark.parametrize("call", [*JOB_CALLS, "accept"])
@pytest.mark.parametrize("job_id", [uuid.uuid4(), "not-a-uuid"])
def test_unknown_job(client, world, call, job_id):
    body = {"runnerToken": world["a"], "jobToken": world["job_token"]}
    assert_problem(post(client, f"{JOBS}/{job_id}/{call}", body), 404, "runner_job_not_found")


def test_update_bad_progress(client, world):
    before = snapshot(world["job"])
    for progress in ("abc", 150, -1, [1]):
        body = {"runnerToken": world["a"], "jobToken": world["job_token"], "progress": progress}
        assert_problem(_call(client, world, "update", body), 400, "invalid_request")
    assert snapshot(world["job"]) == before


def test_update_progress(client, world):
    body = {"runnerToken": world["a"], "jobToken": world["job_token"], "progress": 42}
    assert _call(client, world, "update", body).status_code == 204
    world["job"].refresh_from_db()
    assert (world["job"].progress, world["job"].state) == (42, RunnerJobState.PROCESSING)


@pytest.mark.parametrize(
    "files", [{}, {"payload[videoFile]": "text"}, {"payload[resolutionPlaylistFile]": "x"}]
)
def test_success_without_files_is_400_and_job_stays_processing(client, world, files):
    from django.core.files.uploadedfile import SimpleUploadedFile

    before = snapshot(world["job"])
    data = {"runnerToken": world["a"], "jobToken": world["job_token"]}
    for name, value in files.items():
        data[name] = value
    if "payload[resolutionPlaylistFile]" in files:
        data["payload[videoFile]"] = SimpleUploadedFile("a.mp4", b"x")
    response = client.post(f"{JOBS}/{world['job'].uuid}/success", data)  # multipart
    assert_problem(response, 400, "invalid_request")
    assert snapshot(world["job"]) == before


def test_accept_non_pending_is_409_quiet_race(client, world):
    before = snapshot(world["job"])
    response = post(client, f"{JOBS}/{world['job'].uuid}/accept", {"runnerToken": world["b"]})
    assert_problem(response, 409, "runner_job_not_in_pending_state")
    response = post(client, f"{JOBS}/{world['child'].uuid}/accept", {"runnerToken": world["b"]})
    assert_problem(response, 409, "runner_job_not_in_pending_state")
    assert snapshot(world["job"]) == before


def test_accept_and_request_need_a_known_runner(client, world):
    child_before = snapshot(world["child"])
    body = {"runnerToken": "ptrt-nobody"}
    assert_problem(
        post(client, f"{JOBS}/{world['child'].uuid}/accept", body), 404, "unknown_runner_token"
    )
    assert_problem(post(client, f"{JOBS}/request", body), 404, "unknown_runner_token")
    assert_problem(post(client, f"{JOBS}/request", {}), 400, "invalid_request")
    assert snapshot(world["child"]) == child_before


def test_request_lists_pending_jobs_despite_drf_defaults(client, world, settings):
    assert "IsAuthenticated" in settings.REST_FRAMEWORK["DEFAULT_PERMISSION_CLASSES"][0]
    response = post(
        client, f"{JOBS}/request", {"runnerToken": world["b"], "jobTypes": ["vod-hls-transcoding"]}
    )
    assert response.status_code == 200
    assert response.json() == {"availableJobs": []}  # the parent is processing, child waits
    bad = post(client, f"{JOBS}/request", {"runnerToken": world["b"], "jobTypes": "vod"})
    assert_problem(bad, 400, "invalid_request")


def test_register_and_unregister(client, db):
    runner_make("seeded")
    body = {"registrationToken": REGISTRATION_TOKEN, "name": "fresh", "description": "d"}
    response = post(client, "/api/v1/runners/register", body)
    assert response.status_code == 200
    token = response.json()["runnerToken"]
    assert Runner.objects.filter(name="fresh", runnerToken=token).exists()
    assert_problem(post(client, "/api/v1/runners/register", body), 409, "runner_name_taken")
    bad = {**body, "name": "other", "registrationToken": "ptrrt-wrong"}
    assert_problem(
        post(client, "/api/v1/runners/register", bad), 404, "invalid_registration_token"
    )
    assert_problem(post(client, "/api/v1/runners/register", {"name": "x"}), 400, "invalid_request")
    assert post(client, "/api/v1/runners/unregister", {"runnerToken": token}).status_code == 204
    assert not Runner.objects.filter(name="fresh").exists()
    again = post(client, "/api/v1/runners/unregister", {"runnerToken": token})
    assert_problem(again, 404, "unknown_runner_token")


def test_route_is_anchored(client, world):
    response = post(client, "/foo/api/v1/runners/jobs/request", {"runnerToken": world["a"]})
    assert response.status_code == 404


class TestDownload:
    def url(self, world, video_uuid=None):
        video_uuid = video_uuid or world["video"].uuid
        return f"/api/v1/runners/jobs/files/videos/{video_uuid}/{world['job'].uuid}/max-quality"

    def test_redirects_302_to_the_source(self, client, world, videos_root):
        body = {"runnerToken": world["a"], "jobToken": world["job_token"]}
        response = post(client, self.url(world), body)
        assert response.status_code == 302
        assert response["Location"] == f"http://testserver{videos_root}/tmp/abc/video/1"
        assert world["job"].payload["input"]["videoFileUrl"].endswith(self.url(world))

    @pytest.mark.parametrize(
        "change,status,code",
        [
            ({"runnerToken": "ptrt-nobody"}, 404, "unknown_runner_token"),
            ({"runnerToken": "ptrt-runner-b"}, 403, "runner_job_not_owned"),
            ({"jobToken": "ptrjt-forged"}, 403, "invalid_job_token"),
            ({"jobToken": None}, 400, "invalid_request"),
        ],
    )
    def test_refused(self, client, world, videos_root, change, status, code):
        body = {"runnerToken": world["a"], "jobToken": world["job_token"], **change}
        body = {k: v for k, v in body.items() if v is not None}
        assert_problem(post(client, self.url(world), body), status, code)

    def test_job_of_another_video(self, client, world, videos_root):
        body = {"runnerToken": world["a"], "jobToken": world["job_token"]}
        response = post(client, self.url(world, video_uuid=uuid.uuid4()), body)
        assert_problem(response, 404, "runner_job_not_found")
        assert_problem(post(client, self.url(world, video_uuid="junk"), body), 404, "not_found")


# --- socket.io: /runners refuses strangers -----------------------------------------------------


@pytest.mark.e2e
@pytest.mark.parametrize("auth", [None, {}, {"runnerToken": ""}, {"runnerToken": "ptrt-nobody"}])
def test_socket_refuses_missing_or_unknown_tokens(live_server_url, auth):
    import socketio

    sio = socketio.Client(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
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
