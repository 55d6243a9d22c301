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
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

INSERT_FINISHED = """
INSERT INTO django_peertube_runner_connector_runnerjob
    (id, uuid, domain, type, payload, "privatePayload", state, failures, priority,
     "createdAt", "updatedAt", "finishedAt")
SELECT gen_random_uuid(), gen_random_uuid(), 'http://bench', 'vod-hls-transcoding',
       '{"input": {"videoFileUrl": "http://bench/x"}, "output": {"resolution": 240, "fps": 30}}',
       jsonb_build_object('videoUUID', gen_random_uuid()::text),
       3, 0, 0, now(), now(), now()
FROM generate_series(1, %s)
"""
INDEX = "runners_runnerjob_pending_order"  # runners migration 0007


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--sizes", default="1000,1000000")
    args = parser.parse_args()

    url = os.environ.get(
        "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/h_runners_bench"
    )
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("MARSHA_RUNNER_ENV_FILE", "env.d/test")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marsha_runner.settings")
    os.environ["REDIS_URL"] = ""
    os.environ["DJANGO_ALLOWED_HOSTS"] = "testserver"
    _database_create(url)

    import django

    django.setup()
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
            cursor.execute(INSERT_FINISHED, [size])
            cursor.execute(INSERT_FINISHED.replace("3, 0, 0", "1, 0, 0"), [10])
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


def _database_create(url):
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


if __name__ == "__main__":
    main()
