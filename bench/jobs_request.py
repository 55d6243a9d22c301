"""jobs/request latency with 1,000 and 1,000,000 finished jobs, on PostgreSQL (not run by CI).

The library filters pending jobs ordered by priority; without an index PostgreSQL scans every
finished job per call (docs/design.md#dispatch). Our migration adds a partial index on pending
jobs. This script fills a scratch database with finished jobs (generate_series, server side),
keeps ten pending ones, and times the real view (Django test client → our hardened API) with
and without that index.

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/h_runners_bench \
        .venv/bin/python bench/jobs_request.py [--calls 300]
"""

import argparse
import os
import statistics
import time

from common import FINISHED, INSERT_JOBS, PENDING, database_create, django_setup  # bench/ on path

INDEX = "runners_runnerjob_pending_order"  # runners migration 0007


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--sizes", default="1000,1000000")
    args = parser.parse_args()

    url = os.environ.get(
        "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/h_runners_bench"
    )
    database_create(url)
    django_setup(database_url=url, DJANGO_ALLOWED_HOSTS="testserver")
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from marsha_runner.runners.tokens import runner_seed

    call_command("migrate", verbosity=0)
    runner_seed(registration_token="ptrrt-bench", runner_name="bench", runner_token="ptrt-bench")
    client = Client()
    body = {"runnerToken": "ptrt-bench", "jobTypes": ["vod-hls-transcoding"]}

    def timed():
        samples = []
        for _ in range(20):  # warm-up
            client.post("/api/v1/runners/jobs/request", body, content_type="application/json")
        for _ in range(args.calls):
            started = time.perf_counter()
            response = client.post(
                "/api/v1/runners/jobs/request", body, content_type="application/json"
            )
            samples.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200 and len(response.json()["availableJobs"]) == 10
        samples.sort()
        return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]

    print(f"jobs/request latency over {args.calls} calls (ms), PostgreSQL {url.rsplit('/', 1)[1]}")
    for size in [int(s) for s in args.sizes.split(",")]:
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE django_peertube_runner_connector_runnerjob CASCADE")
            started = time.perf_counter()
            cursor.execute(INSERT_JOBS, [FINISHED, size])
            cursor.execute(INSERT_JOBS, [PENDING, 10])
            cursor.execute("ANALYZE django_peertube_runner_connector_runnerjob")
            filled = time.perf_counter() - started
        with_index = timed()
        with connection.cursor() as cursor:
            cursor.execute(f"DROP INDEX {INDEX}")
            cursor.execute("ANALYZE django_peertube_runner_connector_runnerjob")
        without_index = timed()
        with connection.cursor() as cursor:
            cursor.execute(
                f"CREATE INDEX {INDEX} ON django_peertube_runner_connector_runnerjob "
                '(priority, "createdAt", id) WHERE state = 1'
            )
            cursor.execute("ANALYZE django_peertube_runner_connector_runnerjob")
        print(
            f"{size:>9,} finished jobs (filled in {filled:.1f}s): "
            f"with partial index p50 {with_index[0]:.2f} p95 {with_index[1]:.2f} | "
            f"without p50 {without_index[0]:.2f} p95 {without_index[1]:.2f}"
        )


if __name__ == "__main__":
    main()
