"""Playable sooner and every runner busy (issue 18; not run by CI).

1. **First rung.** One uvicorn worker (the embedded default's env file, a scratch SQLite
   database and videos folder) per choice of first rung; one dev runner running two jobs at
   once (peertube-runner's default); a 60 s 1080p upload through the API. Printed per choice:
   time from upload-ended to first playable (``playable_on``), to ``ready``, and their ratio.
2. **Fleet.** N dev runners x 2 slots connected, ``--videos`` short uploads in a burst; printed:
   slot-seconds left idle while jobs waited (``devrunner.fleet.idle_slot_seconds``), with the
   dispatch of PeerTube's server (every runner the same list: ``RUNNERS_DISPATCH_SPREAD=False``)
   and with ours.

    .venv/bin/python bench/scheduling.py                      # both parts
    .venv/bin/python bench/scheduling.py --part fleet --runners 4 --videos 6
    .venv/bin/python bench/scheduling.py --part rung --choices 0:wait,480:now --seconds 60
"""

import argparse
import sqlite3
import subprocess
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import requests
from common import BASE_DIR, PYTHON, free_port, serve, server_env  # bench/ is on sys.path

JOBS = "django_peertube_runner_connector_runnerjob"
PASSWORD = "bench-scheduling-password"  # noqa: S105  (a scratch database's user)

from marsha_runner.devrunner.client import RunnerClient  # noqa: E402
from marsha_runner.devrunner.fleet import idle_slot_seconds  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["rung", "fleet", "both"], default="both")
    parser.add_argument(
        "--choices",
        default="0:wait,480:wait,480:now,360:now",
        help="first rungs: HEIGHT:wait (the others wait for it) or HEIGHT:now; 0 = the top",
    )
    parser.add_argument("--seconds", type=int, default=60, help="length of the 1080p upload")
    parser.add_argument("--runners", type=int, default=4)
    parser.add_argument("--videos", type=int, default=6, help="uploads of the fleet part")
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench-scheduling-"))
    if args.part in ("rung", "both"):
        clip = _clip(scratch / "1080p.mp4", "1920x1080", args.seconds)
        print(f"first rung: a {args.seconds} s 1080p30 upload, one dev runner x 2 slots")
        for choice in args.choices.split(","):
            height, mode = choice.split(":")
            _rung_round(scratch, clip, int(height), mode == "wait", args.timeout)
    if args.part in ("fleet", "both"):
        clip = _clip(scratch / "360p.mp4", "640x360", 4)
        print(f"fleet: {args.runners} dev runners x 2 slots, {args.videos} uploads of 4 s 360p")
        for spread in (False, True):
            _fleet_round(scratch, clip, args.runners, args.videos, spread, args.timeout)


def _clip(path, size, seconds):
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
         f"testsrc2=size={size}:rate=30:duration={seconds}", "-f", "lavfi", "-i",
         f"sine=frequency=440:duration={seconds}", "-c:v", "libx264", "-preset", "veryfast",
         "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path)],
        check=True,
    )  # fmt: skip
    return path


class Server:
    """A scratch marsha_runner (SQLite, videos folder) in one uvicorn worker."""

    def __init__(self, scratch: Path, name: str, runners: int, **settings):
        self.folder = scratch / name
        self.folder.mkdir()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.database = self.folder / "db.sqlite3"
        self.env = server_env(
            env_file="env.d/development",
            database_url=f"sqlite:///{self.database}",
            VIDEOS_ROOT=self.folder / "videos",
            RUNNERS_CALLBACK_DOMAIN=self.url,
            **settings,
        )
        self.tokens = [f"ptrt-bench-scheduling-{n}" for n in range(runners)]
        subprocess.run(
            [PYTHON, "manage.py", "migrate", "--noinput", "-v0"],
            cwd=BASE_DIR,
            env=self.env,
            check=True,
        )
        subprocess.run(
            [PYTHON, "manage.py", "seed_admin", "--username", "bench", "--password", PASSWORD],
            cwd=BASE_DIR,
            env=self.env,
            check=False,
            capture_output=True,
        )
        for n, token in enumerate(self.tokens):
            subprocess.run(
                [PYTHON, "manage.py", "seed_runner", "--runner-name", f"bench-{n}",
                 "--runner-token", token, "--registration-token", "ptrrt-bench-scheduling"],
                cwd=BASE_DIR, env=self.env, check=True, capture_output=True,
            )  # fmt: skip
        _, self.process = serve(
            self.env, "marsha_runner.asgi:application", self.folder / "server.log", self.port
        )
        self.session = requests.Session()
        answer = self.session.post(
            f"{self.url}/api/token/", json={"username": "bench", "password": PASSWORD}, timeout=30
        )
        answer.raise_for_status()
        self.session.headers["Authorization"] = f"Bearer {answer.json()['access']}"

    def upload(self, clip: Path, *, end: bool = True) -> tuple[str, float]:
        """A video uploaded through the API; (id, when upload-ended was sent)."""
        api = f"{self.url}/api/videos"
        video = self.session.post(f"{api}/", json={"title": clip.name}, timeout=30).json()["id"]
        upload = self.session.post(
            f"{api}/{video}/initiate-upload/",
            json={"filename": clip.name, "mimetype": "video/mp4", "size": clip.stat().st_size},
            timeout=30,
        ).json()
        with open(clip, "rb") as handle:
            requests.post(
                upload["url"],
                data=upload["fields"],
                files={"file": (clip.name, handle, "video/mp4")},
                timeout=300,
            ).raise_for_status()
        sent = time.time()
        self.session.post(
            f"{api}/{video}/upload-ended/", json={"file_key": upload["fields"]["key"]}, timeout=300
        ).raise_for_status()
        return video, sent

    def video(self, video_id: str) -> dict:
        answer = self.session.get(f"{self.url}/api/videos/{video_id}/", timeout=30)
        answer.raise_for_status()
        return answer.json()

    def job_waits(self) -> list[tuple[float, float | None]]:
        """(pending since, accepted) of every job: since its creation, or its parent's end."""
        with sqlite3.connect(self.database) as db:
            rows = db.execute(
                'SELECT j."createdAt", j."startedAt", p."finishedAt" FROM '
                "django_peertube_runner_connector_runnerjob j LEFT JOIN "
                'django_peertube_runner_connector_runnerjob p ON p.id = j."dependsOnRunnerJob_id"'
            ).fetchall()
        stamp = _timestamp
        return [
            (max(stamp(created), stamp(parent_end) or 0), stamp(started))
            for created, started, parent_end in rows
        ]

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)


def _timestamp(value):
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def _run_runners(clients, timeout, idle=5.0):
    done, errors = {}, []
    for client in clients:
        client.workdir.mkdir(parents=True, exist_ok=True)

    def work(client):
        try:
            done[client] = client.run_until_idle(timeout=timeout, idle=idle)
        except Exception as err:  # noqa: BLE001  (printed)
            errors.append(err)

    threads = [threading.Thread(target=work, args=(client,), daemon=True) for client in clients]
    for thread in threads:
        thread.start()
    return threads, done, errors


def _rung_round(scratch, clip, height, waits, timeout):
    name = (
        f"{'top' if not height else f'{height}p'} first, the rest {'wait' if waits else 'at once'}"
    )
    server = Server(
        scratch,
        f"rung-{height}-{int(waits)}",
        1,
        TRANSCODING_FIRST_RESOLUTION=height,
        TRANSCODING_LADDER_WAITS_FOR_FIRST=waits,
    )
    try:
        runner = RunnerClient(server.url, server.tokens[0], workdir=server.folder / "runner")
        threads, _, errors = _run_runners([runner], timeout, idle=600)
        while not runner.connected:
            time.sleep(0.05)
        video_id, sent = server.upload(clip)
        playable = ready = None
        deadline = time.monotonic() + timeout
        while ready is None and time.monotonic() < deadline and not errors:
            video = server.video(video_id)
            if playable is None and video.get("playable_on"):
                playable = _timestamp(video["playable_on"]) - sent
            if video["upload_state"] in ("ready", "error"):
                ready = _timestamp(video["updated_on"]) - sent  # the ready save stamps it
                state = video["upload_state"]
            time.sleep(2)  # the server's stamps are the figures: polling only finds them
        runner.disconnect()
        if errors or ready is None:
            print(f"  {name}: failed ({errors or 'timeout'})")
            return
        print(
            f"  {name:<32} first playable {playable:7.1f} s   {state} {ready:7.1f} s   "
            f"ratio {playable / ready:.2f}   resolutions {video['resolutions']}"
        )
    finally:
        server.stop()


def _fleet_round(scratch, clip, runners, videos, spread, timeout):
    """The uploads first (their jobs pending), then every runner starts at once, as after a
    deploy or a burst of uploads: each check at start is a race for the same list."""
    server = Server(scratch, f"fleet-{int(spread)}", runners, RUNNERS_DISPATCH_SPREAD=spread)
    try:
        for _ in range(videos):
            server.upload(clip)
        clients = [
            RunnerClient(server.url, token, workdir=server.folder / f"runner-{n}")
            for n, token in enumerate(server.tokens)
        ]
        for client in clients:
            client.connect()
        started = time.time()
        threads, done, errors = _run_runners(clients, timeout)
        for thread in threads:
            thread.join(timeout)
        until = time.time()
        waits = [(max(since, started), accepted) for since, accepted in server.job_waits()]
        idle = idle_slot_seconds(
            slots=[tuple(slot) for client in clients for slot in client.slots],
            capacity=2 * runners,
            waits=waits,
            until=until,
        )
        full = sorted(start for client in clients for start, _ in client.slots)
        label = "ours (spread + re-ping)" if spread else "PeerTube's (same list for all)"
        print(
            f"  dispatch {label:<31} {len(waits)} jobs, every slot busy after "
            f"{full[2 * runners - 1] - started:5.2f} s, idle slot-seconds while jobs waited "
            f"{idle:6.2f}, refused accepts {sum(c.refused for c in clients)}, wall "
            f"{until - started:5.1f} s{f', errors {errors}' if errors else ''}"
        )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
