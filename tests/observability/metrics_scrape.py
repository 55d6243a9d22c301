"""Reading /metrics as Prometheus does: prometheus-client's own parser."""

import requests
from prometheus_client.parser import text_string_to_metric_families


def parse(text: str) -> dict:
    """{(sample name, frozenset of labels): value} of an exposition."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(base_url: str, **kwargs) -> dict:
    response = requests.get(f"{base_url}/metrics", timeout=30, **kwargs)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return parse(response.text)


def value(samples: dict, name: str, **labels) -> float:
    """A sample's value; 0 when it is absent (a counter never incremented)."""
    return samples.get((name, frozenset((k, str(v)) for k, v in labels.items())), 0.0)


def delta(after: dict, before: dict, name: str, **labels) -> float:
    return value(after, name, **labels) - value(before, name, **labels)
