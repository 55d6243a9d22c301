"""The project's runner client behaves like peertube-runner (issue 6, item 8), end to end.

uvicorn + socket.io, real ffmpeg: two jobs in flight at once (peertube-runner's default
concurrency), the source fetched with a JSON body, an ffmpeg failure reported with ``error``
and its message (the job retried, then errored at the max failures) instead of raising.
"""

import pytest
import requests
from django_peertube_runner_connector.models import RunnerJob, RunnerJobState

from marsha_runner.devrunner.client import RunnerClient
from marsha_runner.runners.tokens import runner_seed
from tests.runners.factories import job_tree
from tests.runners.media import upload_launched

pytestmark = [pytest.mark.e2e, pytest.mark.ffmpeg]


def _recording_session():
    """A requests session noting (method, path, content type) of every call it makes."""
    session = requests.Session()
    session.calls = []

    def note(response, *args, **kwargs):
        request = response.request
        session.calls.append(
            (request.method, request.path_url, request.headers.get("Content-Type"))
        )

    session.hooks["response"].append(note)
    return session


def test_two_jobs_in_flight_at_once(videos_root, live_server_url, settings):
    settings.TRANSCODING_RESOLUTIONS_480P = False  # 720p source: 720 then 360 and 240 at once
    runner_seed(registration_token="ptrrt-c", runner_name="conc", runner_token="ptrt-conc")
    session = _recording_session()
    client = RunnerClient(live_server_url, "ptrt-conc", session=session)
    assert client.concurrency == 2
    client.connect()
    upload_launched(videos_root, stamp=1, width=1280, height=720, seconds=2)
    assert client.wait_ping(10)

    assert client.run_until_idle(timeout=180, idle=2) == 3
    assert client.failed == []
    assert client.max_in_flight == 2
    # The two children were both accepted before either was sent back: in flight together.
    children = {str(j.uuid) for j in RunnerJob.objects.exclude(dependsOnRunnerJob=None)}
    order = [(call, uuid) for call, uuid in client.events if uuid in children]
    assert [call for call, _ in order[:2]] == ["accept", "accept"], client.events
    assert {call for call, _ in order[2:]} == {"success"}
    assert set(RunnerJob.objects.values_list("state", flat=True)) == {RunnerJobState.COMPLETED}
    # Every source download was a POST with a JSON body, as peertube-runner sends it.
    downloads = [c for c in session.calls if c[1].endswith("/max-quality")]
    assert len(downloads) == 3
    assert {(method, ctype) for method, _, ctype in downloads} == {("POST", "application/json")}


def test_ffmpeg_failure_is_reported_with_its_message(videos_root, live_server_url, settings):
    settings.TRANSCODING_RUNNER_MAX_FAILURE = 2
    runner_seed(registration_token="ptrrt-f", runner_name="fail", runner_token="ptrt-fail")
    _, parent, children = job_tree(domain=live_server_url, resolutions=(240, 144))
    source = videos_root / "tmp/abc/video/1"  # the tree's source: not a video
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_bytes(b"this is not a video\n" * 100)
    client = RunnerClient(live_server_url, "ptrt-fail")

    assert client.run_until_idle(timeout=120, idle=2) == 0  # no raise: reported instead
    assert len(client.failed) == 2  # tried, retried, errored at the max
    assert all(message.startswith("ffmpeg failed") for _, message in client.failed)
    assert [call for call, _ in client.events] == ["accept", "error", "accept", "error"]
    parent.refresh_from_db()
    assert (parent.state, parent.failures) == (RunnerJobState.ERRORED, 2)
    assert parent.error.startswith("ffmpeg failed")
    children[0].refresh_from_db()
    assert children[0].state == RunnerJobState.PARENT_ERRORED
