"""Who may read /metrics: METRICS_ALLOWED_NETWORKS (the direct peer) or the METRICS_TOKEN."""

import pytest

from tests.observability.metrics_scrape import parse, value

pytestmark = pytest.mark.django_db


def test_loopback_reads_the_metrics_by_default(client):
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 200
    assert value(parse(response.content.decode()), "marsha_runner_database_up") == 1


def test_other_networks_are_refused_without_the_token(client, settings):
    settings.METRICS_TOKEN = "metrics-token-0123456789"
    refused = client.get("/metrics", REMOTE_ADDR="10.1.2.3", HTTP_X_FORWARDED_FOR="127.0.0.1")
    assert refused.status_code == 403
    assert refused.json()["errors"][0]["code"] == "permission_denied"
    wrong = client.get(
        "/metrics", REMOTE_ADDR="10.1.2.3", HTTP_AUTHORIZATION="Bearer metrics-token-wrong"
    )
    assert wrong.status_code == 403
    right = client.get(
        "/metrics", REMOTE_ADDR="10.1.2.3", HTTP_AUTHORIZATION="Bearer metrics-token-0123456789"
    )
    assert right.status_code == 200


def test_allowed_networks_are_cidrs(client, settings):
    settings.METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8", "fd00::/8"]
    assert client.get("/metrics", REMOTE_ADDR="10.200.1.1").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="fd00::1").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="192.168.1.1").status_code == 403


def test_a_database_outage_is_a_gauge_not_an_error_page(client, monkeypatch):
    def down(**_):
        raise ConnectionError("database gone")

    monkeypatch.setattr("marsha_runner.observability.collectors.queue_health", down)
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 200
    samples = parse(response.content.decode())
    assert value(samples, "marsha_runner_database_up") == 0
    assert not any(name == "marsha_runner_videos" for name, _ in samples)
