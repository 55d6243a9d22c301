"""Real services a fault test owns: its own SeaweedFS, Redis and PostgreSQL cluster, each
stopped and started again inside the test on the same port and data (as an outage is).

Found and started like ``.ci/services.sh`` does: ``weed mini`` from the venv, ``redis-server``
and Debian's PostgreSQL binaries (``initdb`` + ``pg_ctl``, as user postgres when run as root).
"""

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import free_port, port_open, require

BASE_DIR = Path(__file__).resolve().parent.parent.parent
WEED = BASE_DIR / ".venv" / "bin" / "weed"
STOP_TIMEOUT = 30


def wait_until(predicate, *, timeout: float, what: str, every: float = 0.05):
    """Poll ``predicate`` until it is truthy (its value) or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(every)


def _port_pair() -> int:
    """A free port whose +10000 (SeaweedFS gRPC) is free too."""
    while True:
        port = free_port()
        if port + 10000 > 65535:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port


class Service:
    """A process we start, stop (SIGTERM, waited for) and start again."""

    name = "service"

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.process = None
        self.stopped_at = None
        self.started_at = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def answers(self) -> bool:
        raise NotImplementedError

    def start(self):
        log = open(self.workdir / f"{self.name}.log", "ab")  # noqa: SIM115 - the process keeps it
        self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT)
        wait_until(self.answers, timeout=60, what=f"{self.name} answering")
        self.started_at = time.monotonic()

    def stop(self):
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT)
            self.process = None
        self.stopped_at = time.monotonic()


class Weed(Service):
    """A SeaweedFS (``weed mini``) with SigV4 credentials; its data survives a restart."""

    name = "weed"

    def __init__(self, workdir: Path):
        super().__init__(workdir)
        require(WEED.exists(), "needs SeaweedFS in the venv (.venv/bin/weed)")
        self.port = _port_pair()
        self.ports = {part: _port_pair() for part in ("master", "volume", "filer", "admin")}
        self.access_key = f"fault-{secrets.token_hex(6)}"
        self.secret_key = secrets.token_urlsafe(24)
        (workdir / "weed").mkdir(exist_ok=True)
        identities = {
            "identities": [
                {
                    "name": "fault",
                    "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        (workdir / "s3.json").write_text(json.dumps(identities))

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self):
        ports = self.ports
        return [
            str(WEED), "mini", f"-dir={self.workdir / 'weed'}", "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1", f"-s3.port={self.port}",
            f"-s3.config={self.workdir / 's3.json'}", f"-master.port={ports['master']}",
            f"-volume.port={ports['volume']}", f"-filer.port={ports['filer']}",
            f"-admin.port={ports['admin']}", "-admin.ui=false", "-webdav=false",
            "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.telemetry=false",
        ]  # fmt: skip

    def answers(self) -> bool:
        try:
            return requests.get(self.endpoint, timeout=2).status_code > 0
        except requests.RequestException:
            return False

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
        )

    def readable(self, bucket: str, key: str) -> bool:
        """The object answers a GET (the filer, not only the S3 port, is back)."""
        try:
            self.client().head_object(Bucket=bucket, Key=key)
            return True
        except Exception:  # noqa: BLE001 - not yet
            return False


class Redis(Service):
    name = "redis"

    def __init__(self, workdir: Path):
        super().__init__(workdir)
        require(bool(shutil.which("redis-server")), "needs redis-server on PATH")
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self):
        return [
            "redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(self.workdir),
        ]  # fmt: skip

    def answers(self) -> bool:
        return port_open("127.0.0.1", self.port)


def _pg_bin() -> Path | None:
    root = Path("/usr/lib/postgresql")
    versions = (
        sorted(root.iterdir(), key=lambda p: [int(x) for x in p.name.split(".")])
        if (root.is_dir())
        else []
    )
    return versions[-1] / "bin" if versions else None


class Postgres(Service):
    """A PostgreSQL cluster of the test's own (``initdb`` + ``pg_ctl``), trust on loopback."""

    name = "postgres"

    def __init__(self, workdir: Path):
        super().__init__(workdir)
        self.bin = _pg_bin()
        require(self.bin is not None, "needs Debian's PostgreSQL binaries (/usr/lib/postgresql)")
        self.port = free_port()
        # Its own folder under /tmp: pytest's are private to root, and as root initdb and
        # pg_ctl refuse to run, so they run as postgres, who must reach the folder.
        self.root = Path(tempfile.mkdtemp(prefix="fault-pg-"))
        self.data = self.root / "pgdata"
        self.data.mkdir()
        self.as_user = []
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
            shutil.chown(self.data, "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        subprocess.run(
            [*self.as_user, str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres",
             "--auth=trust", "--no-sync"],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def _ctl(self, *args):
        subprocess.run(
            [*self.as_user, str(self.bin / "pg_ctl"), "-D", str(self.data), "-w", *args],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip

    def start(self):
        options = (
            f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c full_page_writes=off"
        )
        self._ctl("-l", str(self.data / "log"), "-o", options, "start")
        wait_until(self.answers, timeout=60, what="PostgreSQL answering")
        self.started_at = time.monotonic()

    def stop(self):
        self._ctl("-m", "fast", "stop")
        self.stopped_at = time.monotonic()

    def remove(self):
        """Stop it if it runs, and delete its folder."""
        if self.answers():
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def answers(self) -> bool:
        return port_open("127.0.0.1", self.port)

    def sql(self, database: str, query: str, *params):
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True) as conn:
            rows = conn.execute(query, params)
            return rows.fetchall() if rows.description else None


class Outage:
    """Stop ``service`` now; ``end()`` starts it again and remembers when it answered."""

    def __init__(self, service: Service):
        self.service = service
        service.stop()
        self.began = time.monotonic()
        self.ended = None

    def end(self):
        self.service.start()
        self.ended = time.monotonic()

    def end_after(self, seconds: float) -> threading.Thread:
        """End it from a thread ``seconds`` from now (while the test drives the client)."""
        thread = threading.Timer(seconds, self.end)
        thread.start()
        return thread


def python() -> str:
    return sys.executable


@pytest.fixture
def redis_server(tmp_path):
    """A redis-server of the test's own on a free port (``url``, ``stop()``, ``start()``)."""
    workdir = tmp_path / "redis-server"
    workdir.mkdir()
    server = Redis(workdir)
    server.start()
    yield server
    server.stop()
