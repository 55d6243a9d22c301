"""Two SeaweedFS servers with different credentials stand for AWS and Scaleway.

Started like .ci/run starts its own (``weed mini`` from the venv, loopback, free ports, SigV4
enforced). Session-scoped pair for most tests; the test that stops a destination mid-run
starts its own.
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
import time
import uuid
from pathlib import Path

import boto3
import pytest

from tests.conftest import IN_CI, database_url_of, require, reset_video_storage

BASE_DIR = Path(__file__).resolve().parents[2]
WEED = Path(sys.executable).parent / "weed"


def _free_port() -> int:
    """A free loopback port whose +10000 (SeaweedFS gRPC) is free too."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port + 10000 > 65535:
            continue
        try:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", port + 10000))
        except OSError:
            continue
        return port


class WeedServer:
    """One ``weed mini`` with its own credentials; stop() and start() keep data and ports."""

    def __init__(self, name: str):
        self.name = name
        self.dir = Path(tempfile.mkdtemp(prefix=f"marsha-i8-{name}-"))
        self.access_key = f"{name}-{secrets.token_hex(6)}"
        self.secret_key = secrets.token_urlsafe(24)
        self.ports = {k: _free_port() for k in ("s3", "master", "volume", "filer", "admin")}
        self.endpoint = f"http://127.0.0.1:{self.ports['s3']}"
        identity = {
            "name": "i",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        (self.dir / "s3.json").write_text(json.dumps({"identities": [identity]}))
        (self.dir / "data").mkdir()
        self.proc = None

    def start(self, timeout: float = 60):
        args = [
            str(WEED), "mini", f"-dir={self.dir / 'data'}", "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1", f"-s3.port={self.ports['s3']}",
            f"-s3.config={self.dir / 's3.json'}", f"-master.port={self.ports['master']}",
            f"-volume.port={self.ports['volume']}", f"-filer.port={self.ports['filer']}",
            f"-admin.port={self.ports['admin']}", "-admin.ui=false", "-webdav=false",
            "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.telemetry=false",
        ]  # fmt: skip
        log = open(self.dir / "weed.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(args, stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        client = self.client()
        while True:
            assert self.proc.poll() is None, (self.dir / "weed.log").read_text()[-2000:]
            try:
                client.list_buckets()
                return self
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def client(self):
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
            config=Config(retries={"max_attempts": 2}, connect_timeout=2),
        )

    def bucket(self) -> str:
        name = f"b-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def options(self, bucket: str) -> dict:
        return {
            "bucket_name": bucket,
            "endpoint_url": self.endpoint,
            "region_name": "us-east-1",
            "access_key": self.access_key,
            "secret_key": self.secret_key,
            "addressing_style": "path",
            "signature_version": "s3v4",
            "querystring_auth": True,
            "file_overwrite": True,
        }

    def env(self, prefix: str, bucket: str) -> dict:
        return {
            f"{prefix}_BUCKET": bucket,
            f"{prefix}_ENDPOINT_URL": self.endpoint,
            f"{prefix}_REGION": "us-east-1",
            f"{prefix}_ACCESS_KEY_ID": self.access_key,
            f"{prefix}_SECRET_ACCESS_KEY": self.secret_key,
            f"{prefix}_ADDRESSING_STYLE": "path",
        }

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def weed_available():
    require(WEED.exists(), f"needs SeaweedFS ({WEED}): make install")


@pytest.fixture(scope="session")
def weed_pair():
    """AWS and Scaleway stand-ins: two servers, two sets of credentials."""
    if not WEED.exists():
        if IN_CI:
            pytest.fail(f"CI must provide SeaweedFS: {WEED}")
        pytest.skip(f"needs SeaweedFS ({WEED})")
    aws, scaleway = WeedServer("aws"), WeedServer("scw")
    try:
        aws_proc = _start_async(aws)
        scaleway.start()
        aws_proc()
        yield aws, scaleway
    finally:
        aws.cleanup()
        scaleway.cleanup()


def _start_async(server):
    import threading

    errors = []

    def run():
        try:
            server.start()
        except Exception as err:  # noqa: BLE001
            errors.append(err)

    thread = threading.Thread(target=run)
    thread.start()

    def join():
        thread.join()
        if errors:
            raise errors[0]

    return join


class Buckets:
    """A fresh legacy bucket (on AWS) and video bucket (on Scaleway), wired into STORAGES."""

    def __init__(self, settings, source: WeedServer, destination: WeedServer):
        self.source, self.destination = source, destination
        self.source_bucket = source.bucket()
        self.destination_bucket = destination.bucket()
        self.source_client, self.destination_client = source.client(), destination.client()
        settings.AWS_LEGACY_STORAGE = "s3"
        settings.VIDEOS_STORAGE = "s3"
        settings.STORAGES = {
            **settings.STORAGES,
            "aws_legacy": {
                "BACKEND": "marsha_runner.storage.s3.VideoS3Storage",
                "OPTIONS": source.options(self.source_bucket),
            },
            "videos": {
                "BACKEND": "marsha_runner.storage.s3.VideoS3Storage",
                "OPTIONS": destination.options(self.destination_bucket),
            },
        }
        reset_video_storage()

    def env(self) -> dict:
        """Environment of a ``manage.py`` subprocess seeing the same buckets and database."""
        from django.db import connection

        return {
            **os.environ,
            "MARSHA_RUNNER_ENV_FILE": "env.d/test",
            "DATABASE_URL": database_url_of(connection),
            "DATABASE_POOL": "False",
            "AWS_LEGACY_STORAGE": "s3",
            "VIDEOS_STORAGE": "s3",
            **self.source.env("AWS_LEGACY_S3", self.source_bucket),
            **self.destination.env("SCALEWAY_S3", self.destination_bucket),
        }

    def put(self, key: str, body: bytes, **extra):
        self.source_client.put_object(Bucket=self.source_bucket, Key=key, Body=body, **extra)

    def source_keys(self, prefix: str = "") -> dict:
        return _listing(self.source_client, self.source_bucket, prefix)

    def destination_keys(self, prefix: str = "") -> dict:
        return _listing(self.destination_client, self.destination_bucket, prefix)


def _listing(client, bucket, prefix) -> dict:
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            found[item["Key"]] = item
    return found


@pytest.fixture
def buckets(settings, weed_pair):
    aws, scaleway = weed_pair
    yield Buckets(settings, aws, scaleway)
    reset_video_storage()


def manage(env: dict, *args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kwargs,
    )
