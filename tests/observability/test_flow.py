"""A scripted upload → ready (API over uvicorn, the dev runner client doing real ffmpeg work),
then /metrics parsed with prometheus-client's parser: it tells what the database holds. The
same flow, logged at DEBUG (SQL included) as JSON lines: the ids are there, no secret is."""

import io
import json
import logging
import re

import pytest
from django.conf import settings as django_settings
from django_peertube_runner_connector.models import Runner, RunnerJob, RunnerJobState

from marsha_runner.observability.logconfig import secret_values
from marsha_runner.telemetry.logs import ContextFilter, JSONFormatter, RedactSecretsFilter
from marsha_runner.videos.constants import UploadState
from marsha_runner.videos.models import Video
from tests.observability.metrics_scrape import delta, scrape, value
from tests.videos.test_e2e import run_upload_to_ready

pytestmark = [pytest.mark.e2e, pytest.mark.ffmpeg]
HLS = "vod-hls-transcoding"


@pytest.fixture
def json_log():
    """Every record of the process, at DEBUG, through the project's JSON handler."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JSONFormatter())
    handler.addFilter(ContextFilter())
    handler.addFilter(RedactSecretsFilter(literals=secret_values(django_settings)))
    root, sql = logging.getLogger(), logging.getLogger("django.db.backends")
    levels = root.level, sql.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    sql.setLevel(logging.DEBUG)  # every statement with its parameters (DEBUG is on)
    yield stream
    root.removeHandler(handler)
    root.setLevel(levels[0])
    sql.setLevel(levels[1])


def test_metrics_tell_the_database_truth_after_an_upload(
    videos_root, live_server_url, seeded_runner_token, jwt_session, tmp_path, caplog, json_log,
    settings,
):  # fmt: skip
    settings.LOG_ACCESS = True  # what LOG_FORMAT=json turns on: one line per request
    before = scrape(live_server_url)
    session = jwt_session(live_server_url)
    body, _ = run_upload_to_ready(live_server_url, session, tmp_path, seeded_runner_token, caplog)
    after = scrape(live_server_url)

    video = Video.objects.get(id=body["id"])
    assert video.upload_state == UploadState.READY
    completed = list(RunnerJob.objects.filter(state=RunnerJobState.COMPLETED))
    assert len(completed) == len(video.resolutions) == RunnerJob.objects.count()

    # Jobs: one completion and one duration per rendition, the durations the rows' own.
    assert delta(after, before, "marsha_runner_runner_jobs_finished_total", type=HLS,
                 state="completed") == len(completed)  # fmt: skip
    for job in completed:
        resolution = job.payload["output"]["resolution"]
        labels = {"type": HLS, "resolution": resolution}
        count = delta(after, before, "marsha_runner_runner_job_duration_seconds_count", **labels)
        assert count == 1, resolution
        seconds = (job.finishedAt - job.startedAt).total_seconds()
        observed = delta(after, before, "marsha_runner_runner_job_duration_seconds_sum", **labels)
        assert observed == pytest.approx(seconds, abs=1e-3), resolution
    failures = sum(job.failures for job in RunnerJob.objects.all())
    assert delta(after, before, "marsha_runner_runner_job_failures_total", type=HLS,
                 reason="error") == failures == 0  # fmt: skip

    # Gauges read at scrape time: the rows as they are.
    for state in UploadState.values:
        expected = Video.objects.filter(upload_state=state).count()
        assert value(after, "marsha_runner_videos", state=state) == expected, state
    assert value(after, "marsha_runner_videos", state="ready") == 1
    active = [v for (name, _), v in after.items() if name == "marsha_runner_runner_jobs"]
    assert sum(active) == 0
    assert value(after, "marsha_runner_runner_slots_busy") == 0
    assert value(after, "marsha_runner_runners", status="online") == Runner.objects.count() == 1
    assert value(after, "marsha_runner_runner_jobs_oldest_pending_age_seconds") == 0

    # The video: upload-ended → ready measured from the row's upload_ended_on.
    assert video.upload_ended_on is not None
    assert delta(after, before, "marsha_runner_video_upload_to_ready_seconds_count") == 1
    to_ready = delta(after, before, "marsha_runner_video_upload_to_ready_seconds_sum")
    # The moment observed is the ready row's own updated_on.
    assert to_ready == pytest.approx((video.updated_on - video.upload_ended_on).total_seconds())
    assert delta(after, before, "marsha_runner_video_upload_to_playable_seconds_count") == 1
    to_playable = delta(after, before, "marsha_runner_video_upload_to_playable_seconds_sum")
    assert 0 < to_playable <= to_ready
    assert delta(after, before, "marsha_runner_videos_transcoded_total", state="ready") == 1

    # HTTP, by route name and status: the client's calls and the runner's.
    def requests_delta(route, method, status):
        return delta(after, before, "marsha_runner_http_requests_total", route=route,
                     method=method, status=status)  # fmt: skip

    assert requests_delta("video-list", "POST", 201) == 1
    assert requests_delta("video-upload-ended", "POST", 200) == 1
    assert requests_delta("runner-jobs-accept", "POST", 200) == len(completed)
    assert requests_delta("runner-jobs-success", "POST", 204) == len(completed)
    assert requests_delta("runner-jobs-request", "POST", 200) >= 1  # the fast path too
    assert not any("video_id" in dict(labels) or "job_uuid" in dict(labels)
                   for _, labels in after)  # fmt: skip

    check_logs(json_log.getvalue(), video, completed, session, seeded_runner_token)


def check_logs(text, video, completed, session, runner_token):
    lines = [json.loads(line) for line in text.splitlines()]
    assert len(lines) > 50  # DEBUG: every SQL statement among them
    # Ids where they are known: the runner's calls name their job, the outcome its video.
    job_uuids = {str(job.uuid) for job in completed}
    with_job = [line for line in lines if line.get("job_uuid") in job_uuids]
    assert {line["job_uuid"] for line in with_job} == job_uuids
    assert all(line.get("request_id") for line in with_job)
    # Our access line names the route and status, never the path (a token may be in it).
    access = [line for line in lines if line["logger"] == "marsha_runner.access"]
    ended = [line for line in access if line.get("route") == "video-upload-ended"]
    assert [(line["status"], line["video_id"]) for line in ended] == [(200, str(video.id))]
    assert ended[0]["message"].startswith("POST video-upload-ended 200 ")
    assert not any("/api/" in line["message"] for line in access)
    ready = [line for line in lines if ": ready " in line["message"]]
    assert [line.get("video_id") for line in ready] == [str(video.id)]
    assert ready[0].get("request_id")
    # No secret: the runner's token, the API's JWT, the keys of the settings, any job token.
    jwt = session.headers["Authorization"].split(" ", 1)[1]
    secrets = [runner_token, jwt, *[s for s in secret_values(django_settings) if s]]
    for secret in secrets:
        assert secret not in text
    assert not re.search(r"ptr(?:r|j)?t-[0-9a-f]{8}", text)
    assert any("[redacted]" in line["message"] for line in lines)  # there were some
