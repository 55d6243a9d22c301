"""50 runners accept one job at once, over the real server: exactly one wins (PostgreSQL)."""

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django_peertube_runner_connector.models import RunnerJob, RunnerJobState

from tests.runners.factories import job_tree, runner_make

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]


def test_fifty_concurrent_accepts_give_one_200(live_server_url):
    tokens = [runner_make(f"racer-{i}") for i in range(50)]
    _, parent, _ = job_tree(domain=live_server_url)
    url = f"{live_server_url}/api/v1/runners/jobs/{parent.uuid}/accept"

    def accept(token):
        response = requests.post(url, json={"runnerToken": token}, timeout=60)
        return response.status_code, response.json(), token

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(accept, tokens))

    winners = [r for r in results if r[0] == 200]
    losers = [r for r in results if r[0] != 200]
    assert len(winners) == 1, [r[:2] for r in results if r[0] != 400]
    assert {(status, body["code"]) for status, body, _ in losers} == {
        (400, "runner_job_not_in_pending_state")
    }
    job = RunnerJob.objects.get(pk=parent.pk)
    _, body, winner_token = winners[0]
    assert job.state == RunnerJobState.PROCESSING
    assert job.processingJobToken == body["job"]["jobToken"]
    assert job.runner.runnerToken == winner_token
