"""A fleet of N socket.io runners on one server, one upload (issue 6; not run by CI).

One uvicorn worker serves marsha_runner (the embedded default's env file, a scratch SQLite
database and videos folder). N runners connect over socket.io to ``/runners`` with their
own token, spread over ``--procs`` client processes (python-socketio's asyncio client). One
video is uploaded through the API; from the moment upload-ended is sent, each runner does
what peertube-runner does on ``available-jobs``: POST jobs/request. Printed: time to the
last ping received and to the last jobs/request answered (every answer must be 200 and
offer the upload's job), and each client process's CPU over the window, to tell whether
the Python clients rather than the server are the bottleneck.

    .venv/bin/python bench/fleet.py --runners 50,200 --procs 1,2
"""

import argparse
import asyncio
import json
import multiprocessing
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from common import BASE_DIR, PYTHON, free_port, serve, server_env  # bench/ is on sys.path


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runners", default="50,200", help="fleet sizes, comma separated")
    parser.add_argument("--procs", default="1,2", help="client processes, comma separated")
    parser.add_argument("--env-file", default="env.d/development")
    parser.add_argument("--timeout", type=float, default=60)
    args = parser.parse_args()
    sizes = [int(n) for n in args.runners.split(",")]
    procs = [int(n) for n in args.procs.split(",")]

    scratch = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = server_env(
        env_file=args.env_file,
        database_url=f"sqlite:///{scratch}/db.sqlite3",
        VIDEOS_ROOT=scratch / "videos",
        RUNNERS_CALLBACK_DOMAIN=base_url,
    )
    tokens = _prepare(env, max(sizes))
    clip = scratch / "clip.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=640x360:rate=25:duration=2",
            "-pix_fmt",
            "yuv420p",
            str(clip),
        ],
        check=True,
    )
    _, server = serve(env, "marsha_runner.asgi:application", scratch / "server.log", port=port)
    try:
        session = _api_session(base_url)
        print(f"server {base_url}, one uvicorn worker, SQLite; clip {clip.stat().st_size} bytes")
        for size in sizes:
            for proc_count in procs:
                _round(base_url, session, clip, tokens[:size], proc_count, args.timeout)
    finally:
        server.terminate()
        server.wait(timeout=10)


def _prepare(env, count):
    subprocess.run(
        [PYTHON, "manage.py", "migrate", "--noinput", "-v0"], cwd=BASE_DIR, env=env, check=True
    )
    script = f"""
import django
django.setup()
from django.contrib.auth import get_user_model
from marsha_runner.runners.tokens import runner_seed
get_user_model().objects.create_superuser("bench", "bench@example.com", "bench-fleet-password")
for n in range({count}):
    runner_seed(registration_token="ptrrt-bench-fleet", runner_name=f"fleet-{{n}}",
                runner_token=f"ptrt-bench-fleet-{{n}}")
"""
    subprocess.run([PYTHON, "-c", script], cwd=BASE_DIR, env=env, check=True)
    return [f"ptrt-bench-fleet-{n}" for n in range(count)]


def _api_session(base_url):
    answer = requests.post(
        f"{base_url}/api/token/",
        json={"username": "bench", "password": "bench-fleet-password"},
        timeout=30,
    )
    answer.raise_for_status()
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {answer.json()['access']}"
    return session


def _round(base_url, session, clip, tokens, proc_count, timeout):
    api = f"{base_url}/api/videos"
    video = session.post(f"{api}/", json={"title": "fleet"}, timeout=30).json()["id"]
    upload = session.post(
        f"{api}/{video}/initiate-upload/",
        json={"filename": "clip.mp4", "mimetype": "video/mp4", "size": clip.stat().st_size},
        timeout=30,
    ).json()
    with open(clip, "rb") as handle:
        requests.post(
            upload["url"],
            data=upload["fields"],
            files={"file": ("clip.mp4", handle, "video/mp4")},
            timeout=60,
        ).raise_for_status()

    context = multiprocessing.get_context("spawn")
    ready, results = context.Queue(), context.Queue()
    go = context.Event()
    shares = [tokens[i::proc_count] for i in range(proc_count)]
    workers = [
        context.Process(target=_clients, args=(base_url, share, ready, go, results, timeout))
        for share in shares
    ]
    for worker in workers:
        worker.start()
    for _ in workers:
        ready.get(timeout=120)
    time.sleep(1)  # every socket settled
    before = _offered(base_url, tokens[0])  # earlier rounds' jobs are still pending
    started = time.time()
    go.set()
    ended = session.post(
        f"{api}/{video}/upload-ended/", json={"file_key": upload["fields"]["key"]}, timeout=120
    )
    ended.raise_for_status()
    answered = time.time() - started
    outcome = [results.get(timeout=timeout + 60) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)

    pings = [t for o in outcome for t in o["pings"]]
    calls = [c for o in outcome for c in o["calls"]]
    statuses = {status for o in outcome for status in o["statuses"]}
    offered = sum(1 for c in calls if set(c[1]) - before)
    last_ping = max(pings) - started if pings else float("nan")
    first_ping = min(pings) - started if pings else float("nan")
    last_call = max(c[0] for c in calls) - started if calls else float("nan")
    cpu = ", ".join(f"{o['cpu']:.2f}s CPU / {o['wall']:.2f}s" for o in outcome)
    print(
        f"N={len(tokens):>3} over {proc_count} client process(es): upload-ended answered "
        f"{answered:.2f}s; pings {len(pings)}/{len(tokens)} first {first_ping:.2f}s last "
        f"{last_ping:.2f}s; jobs/request {len(calls)} answered (statuses {sorted(statuses)}, "
        f"{offered} offered this upload's job) last {last_call:.2f}s; clients: {cpu}"
    )


def _offered(base_url, token):
    answer = requests.post(
        f"{base_url}/api/v1/runners/jobs/request",
        json={"runnerToken": token, "jobTypes": ["vod-hls-transcoding"]},
        timeout=30,
    )
    answer.raise_for_status()
    return {job["uuid"] for job in answer.json()["availableJobs"]}


def _clients(base_url, tokens, ready, go, results, timeout):
    asyncio.run(_fleet(base_url, tokens, ready, go, results, timeout))


async def _fleet(base_url, tokens, ready, go, results, timeout):
    import aiohttp
    import socketio

    pings, calls, statuses = [], [], []
    done = asyncio.Event()
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))

    def runner(token):
        client = socketio.AsyncClient(reconnection=False)
        seen = False

        async def on_ping(*_):
            nonlocal seen
            if seen:
                return
            seen = True
            pings.append(time.time())
            async with http.post(
                f"{base_url}/api/v1/runners/jobs/request",
                json={"runnerToken": token, "jobTypes": ["vod-hls-transcoding"]},
            ) as response:
                body = await response.read()
                statuses.append(response.status)
                jobs = json.loads(body).get("availableJobs") if response.status == 200 else []
                calls.append((time.time(), [job["uuid"] for job in jobs]))
            if len(calls) == len(tokens):
                done.set()

        client.on("available-jobs", on_ping, namespace="/runners")
        return client

    clients = [runner(token) for token in tokens]
    for start in range(0, len(clients), 20):  # not all handshakes at once
        await asyncio.gather(
            *(
                client.connect(
                    base_url,
                    namespaces=["/runners"],
                    transports=["websocket"],
                    auth={"runnerToken": token},
                    wait_timeout=30,
                )
                for client, token in zip(
                    clients[start : start + 20], tokens[start : start + 20], strict=True
                )
            )
        )
    ready.put(len(clients))
    await asyncio.get_running_loop().run_in_executor(None, go.wait)
    cpu, wall = time.process_time(), time.time()
    try:
        await asyncio.wait_for(done.wait(), timeout)
    except TimeoutError:
        print(f"!! {len(calls)}/{len(tokens)} runners answered in {timeout}s", file=sys.stderr)
    cpu, wall = time.process_time() - cpu, time.time() - wall
    await asyncio.gather(*(client.disconnect() for client in clients))
    await http.close()
    results.put({"pings": pings, "calls": calls, "statuses": statuses, "cpu": cpu, "wall": wall})


if __name__ == "__main__":
    main()
