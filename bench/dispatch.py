"""Sustained jobs/request throughput against a minimal Django reference (issue 6; not run by CI).

One uvicorn worker serves marsha_runner (the env file of the embedded default, or
PostgreSQL with ``--finished`` finished jobs), another serves bench/reference.py (one async
view, DEBUG off). Debian's ``wrk`` loads each in turn, alternated, for ``--rounds`` rounds:

- ``request``: POST jobs/request with a registered runner's token (body through wrk's Lua
  hook); every answer must be 200 with the same pending jobs;
- ``405``: GET on the same route, refused before any work (our stack's floor).

It prints req/s and p99 of each run and the ratios ours / reference.

    .venv/bin/python bench/dispatch.py                        # embedded default (SQLite)
    .venv/bin/python bench/dispatch.py --database postgres://postgres@127.0.0.1:5432/h_bench \\
        --finished 1000000
"""

import argparse
import json
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from common import BASE_DIR, INSERT_JOBS, PYTHON, database_create, serve, server_env  # bench/

ROUTE = "/api/v1/runners/jobs/request"
RUNNER_TOKEN = "ptrt-bench-dispatch"
PENDING = 5  # the reference answers as many jobs (bench/reference.py BENCH_REFERENCE_JOBS)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="", help="DATABASE_URL (default: a SQLite file)")
    parser.add_argument("--finished", type=int, default=1000, help="finished jobs in the table")
    parser.add_argument("--env-file", default="env.d/development")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=int, default=8, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--keep", action="store_true", help="reuse a filled PostgreSQL table")
    args = parser.parse_args()

    scratch = tempfile.mkdtemp(prefix="bench-dispatch-")
    database = args.database or f"sqlite:///{scratch}/db.sqlite3"
    env = server_env(env_file=args.env_file, database_url=database, BENCH_REFERENCE_JOBS=PENDING)
    started = time.perf_counter()
    _database_fill(env, database, finished=args.finished, keep=args.keep)
    print(
        f"database {_redact(database)}: {args.finished:,} finished + {PENDING} pending jobs "
        f"({time.perf_counter() - started:.1f}s)"
    )

    servers = {
        "ours": serve(env, "marsha_runner.asgi:application", f"{scratch}/ours.log"),
        "reference": serve(env, "bench.reference:application", f"{scratch}/reference.log"),
    }
    try:
        body = json.dumps({"runnerToken": RUNNER_TOKEN, "jobTypes": ["vod-hls-transcoding"]})
        for port, _ in servers.values():
            _warm(port, body)
        post = Path(scratch) / "post.lua"
        post.write_text(
            'wrk.method = "POST"\n'
            f"wrk.body = {json.dumps(body)}\n"
            'wrk.headers["Content-Type"] = "application/json"\n'
        )
        results = {}
        for round_ in range(1, args.rounds + 1):
            for kind in ("request", "405"):
                for name in ("reference", "ours"):
                    port = servers[name][0]
                    figures = _wrk(port, args, post if kind == "request" else None)
                    results.setdefault((kind, name), []).append(figures)
                    print(
                        f"round {round_} {kind:>7} {name:>9}: {figures['rps']:8.1f} req/s  "
                        f"p99 {figures['p99']:7.1f} ms  non-2xx {figures['non2xx']}  "
                        f"errors {figures['errors']}"
                    )
                    if kind == "request" and (figures["non2xx"] or figures["errors"]):
                        print("  !! not every call answered 200", file=sys.stderr)
        print()
        for kind in ("request", "405"):
            ratios = [
                o["rps"] / r["rps"]
                for o, r in zip(results[(kind, "ours")], results[(kind, "reference")], strict=True)
            ]
            ours = [f"{f['rps']:.0f}" for f in results[(kind, "ours")]]
            ref = [f"{f['rps']:.0f}" for f in results[(kind, "reference")]]
            print(
                f"{kind:>7}: ours {'/'.join(ours)} req/s vs reference {'/'.join(ref)} req/s "
                f"→ {min(ratios):.2f}–{max(ratios):.2f}×"
            )
    finally:
        for _, process in servers.values():
            process.send_signal(signal.SIGINT)
            process.wait(timeout=10)


def _redact(url):
    return re.sub(r"//[^@/]*@", "//", url)


def _database_fill(env, database, *, finished, keep):
    """migrate, seed the bench runner, put ``finished`` finished and PENDING pending jobs."""
    python = PYTHON
    if database.startswith("postgres"):
        database_create(database)
    subprocess.run(
        [python, "manage.py", "migrate", "--noinput", "-v0"], cwd=BASE_DIR, env=env, check=True
    )
    script = f"""
import django, os
django.setup()
from django.db import connection
from marsha_runner.runners.tokens import runner_seed
runner_seed(registration_token="ptrrt-bench-dispatch", runner_name="bench-dispatch",
            runner_token={RUNNER_TOKEN!r})
table = "django_peertube_runner_connector_runnerjob"
keep = {keep!r}
with connection.cursor() as cursor:
    cursor.execute(f"SELECT count(*) FROM {{table}} WHERE state = 3")
    if keep and cursor.fetchone()[0] == {finished}:
        cursor.execute(f"DELETE FROM {{table}} WHERE state != 3")
        fill = [(1, {PENDING})]
    else:
        cursor.execute(f"DELETE FROM {{table}}")
        fill = [(3, {finished}), (1, {PENDING})]
    if connection.vendor == "postgresql":
        for state, count in fill:
            cursor.execute({INSERT_JOBS!r}, [state, count])
        cursor.execute(f"ANALYZE {{table}}")
    else:
        import uuid, json
        from django.utils import timezone
        now = timezone.now().isoformat()
        payload = json.dumps({{"input": {{"videoFileUrl": "http://bench/x"}},
                               "output": {{"resolution": 240, "fps": 30}}}})
        for state, count in fill:
            rows = [(uuid.uuid4().hex, uuid.uuid4().hex, "http://bench", "vod-hls-transcoding",
                     payload, json.dumps({{"videoUUID": str(uuid.uuid4())}}), state, 0, 0,
                     now, now, now) for _ in range(count)]
            cursor.executemany(
                f'INSERT INTO {{table}} (id, uuid, domain, type, payload, "privatePayload", '
                'state, failures, priority, "createdAt", "updatedAt", "finishedAt") '
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", rows)
"""
    subprocess.run([python, "-c", script], cwd=BASE_DIR, env=env, check=True)


def _warm(port, body):
    for _ in range(20):
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}{ROUTE}",
            data=body.encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            answer = json.load(response)
    if len(answer["availableJobs"]) != PENDING:
        sys.exit(f"port {port} answered {len(answer['availableJobs'])} jobs, not {PENDING}")


def _wrk(port, args, script):
    command = ["wrk", "-t1", f"-c{args.connections}", f"-d{args.duration}s", "--latency"]
    if script:
        command += ["-s", str(script)]
    output = subprocess.run(
        [*command, f"http://127.0.0.1:{port}{ROUTE}"], capture_output=True, text=True, check=True
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", output)
    p99_ms = float(p99.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[p99.group(2)]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: (.*)", output)
    return {
        "rps": rps,
        "p99": p99_ms,
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "errors": errors.group(1).strip() if errors else 0,
    }


if __name__ == "__main__":
    main()
