"""The Grafana dashboard and the alert rules read metrics that /metrics really exposes."""

import json
import re
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.django_db

DOCS = Path(__file__).resolve().parents[2] / "docs" / "observability"
METRIC_RE = re.compile(r"\bmarsha_runner_[a-z0-9_]+")
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def exposed_names(client) -> set[str]:
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 200
    return {
        family.name + suffix
        for family in text_string_to_metric_families(response.content.decode())
        for suffix in SUFFIXES.get(family.type, ("",))
    }


def test_every_dashboard_query_reads_exposed_metrics(client):
    dashboard = json.loads((DOCS / "grafana-dashboard.json").read_text())
    assert dashboard["__inputs"][0]["pluginId"] == "prometheus"  # importable, data source asked
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 20
    used = {name for expr in exprs for name in METRIC_RE.findall(expr)}
    assert used - exposed_names(client) == set()
    # Each metric family of /metrics is on at least one panel.
    families = {
        re.sub(r"_(total|bucket|count|sum)$", "", n)
        for n in exposed_names(client)
        if n.startswith("marsha_runner_")
    }
    shown = {re.sub(r"_(total|bucket|count|sum)$", "", n) for n in used}
    assert families - shown - {"marsha_runner_metrics_database_read_seconds"} == set()


def test_every_alert_rule_reads_exposed_metrics(client):
    rules = yaml.safe_load((DOCS / "prometheus-alerts.yml").read_text())
    alerts = [rule for group in rules["groups"] for rule in group["rules"]]
    assert len(alerts) >= 8
    assert all(rule["alert"].startswith("MarshaRunner") and rule["annotations"] for rule in alerts)
    used = {name for rule in alerts for name in METRIC_RE.findall(rule["expr"])}
    assert used - exposed_names(client) == set()
