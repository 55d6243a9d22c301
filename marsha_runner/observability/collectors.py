"""The gauges of ``/metrics``: the current state, read from the database at scrape time.

Counted once per scrape by whichever process answers (not per worker, unlike the counters
of ``telemetry.instruments``), through ``operations.selectors.queue_health``, the selector
of the admin's health panel: a scrape costs what the panel costs (``bench/admin.py``).
A database that does not answer gives ``marsha_runner_database_up 0`` and no gauge, not an
error page: Prometheus still gets the counters, and the alert says why.
"""

import logging
import time

from prometheus_client.core import GaugeMetricFamily

from marsha_runner.operations.selectors import queue_health
from marsha_runner.telemetry.instruments import PREFIX, job_type_label

logger = logging.getLogger(__name__)


class DatabaseCollector:
    """A prometheus-client collector (``collect()`` yields metric families)."""

    def collect(self):
        started = time.perf_counter()
        try:
            health = queue_health()
        except Exception:  # noqa: BLE001 - a scrape says the database is down, never a 500
            logger.exception("/metrics could not read the database.")
            yield _gauge("database_up", "1 when /metrics could read the database.", 0)
            return
        yield _gauge("database_up", "1 when /metrics could read the database.", 1)
        yield from _families(health)
        yield _gauge(
            "metrics_database_read_seconds",
            "Time the last scrape took to read the database gauges.",
            time.perf_counter() - started,
        )

    def describe(self):
        return []  # collected at scrape time only: nothing to check at registration


def _gauge(name, documentation, value, labels=None, samples=()):
    family = GaugeMetricFamily(f"{PREFIX}_{name}", documentation, labels=labels)
    if labels is None:
        family.add_metric([], value)
    for label_values, sample in samples:
        family.add_metric(label_values, sample)
    return family


def _families(health):
    jobs = {}
    for row in health.jobs_active:
        key = (row["state"], job_type_label(row["type"]))
        jobs[key] = jobs.get(key, 0) + row["count"]
    yield _gauge(
        "runner_jobs",
        "Runner jobs not finished, by state (pending, waiting_for_parent_job, processing, "
        "completing) and type. Finished jobs: marsha_runner_runner_jobs_finished_total.",
        None,
        labels=["state", "type"],
        samples=[([state, job_type], n) for (state, job_type), n in sorted(jobs.items())],
    )
    busy = sum(n for (state, _), n in jobs.items() if state in ("processing", "completing"))
    yield _gauge(
        "runner_slots_busy", "Jobs a runner is working on (processing or completing).", busy
    )
    yield _gauge(
        "runner_jobs_oldest_pending_age_seconds",
        "Age of the oldest pending job (0 when none waits).",
        health.oldest_pending_age or 0,
    )
    yield _gauge(
        "runner_jobs_errored_24h",
        "Jobs errored for good in the last 24 h.",
        health.jobs_errored_24h,
    )
    yield _gauge(
        "runners",
        "Registered runners by status: online when they called within RUNNERS_ONLINE_WINDOW.",
        None,
        labels=["status"],
        samples=[(["online"], health.runners_online), (["offline"], health.runners_offline)],
    )
    yield _gauge(
        "videos",
        "Videos by upload state.",
        None,
        labels=["state"],
        samples=[([state], n) for state, n in sorted(health.videos_by_state.items())],
    )
