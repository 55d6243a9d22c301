"""Sentry, optional: with SENTRY_DSN an error reaches the DSN's server (a local one here) with
the request id as a tag and its secrets redacted; without it the SDK is not even loaded."""

import gzip
import json
import os
import subprocess
import sys
import threading
import zlib
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]
SCRIPT = """
import logging, django
django.setup()
import sentry_sdk
from marsha_runner.telemetry.context import context_bound
with context_bound(request_id="req-sentry-0123456789", video_id="9a1b2c3d"):
    try:
        raise RuntimeError("upload refused for ptrt-7f1c2d9e-1b2a-4c3d-8e9f-0a1b2c3d4e5f")
    except RuntimeError:
        logging.getLogger("marsha_runner.videos").exception("launch failed")
sentry_sdk.flush(timeout=10)
"""


class Ingest(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        encoding = self.headers.get("Content-Encoding", "")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        elif encoding == "br":
            import brotli  # only when the SDK chose it: it is then installed

            body = brotli.decompress(body)
        self.received.append(body.decode())
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


def run(env_extra):
    env = {**os.environ, "MARSHA_RUNNER_ENV_FILE": "env.d/test", **env_extra}
    env.pop("DATABASE_URL", None)  # no database needed
    return subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=BASE_DIR, env=env, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip


def test_an_error_reaches_sentry_with_its_ids_and_without_secrets():
    Ingest.received = []
    server = HTTPServer(("127.0.0.1", 0), Ingest)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        dsn = f"http://publickey@127.0.0.1:{server.server_port}/42"
        done = run({"SENTRY_DSN": dsn, "SENTRY_ENVIRONMENT": "ci"})
    finally:
        server.shutdown()
    assert done.returncode == 0, done.stderr
    envelopes = "\n".join(Ingest.received)
    events = [
        json.loads(line)
        for line in envelopes.splitlines()
        if line.startswith("{") and '"exception"' in line
    ]
    assert len(events) == 1, envelopes[:2000]
    event = events[0]
    assert event["environment"] == "ci"
    assert event["tags"]["request_id"] == "req-sentry-0123456789"
    assert event["tags"]["video_id"] == "9a1b2c3d"
    (exception,) = event["exception"]["values"]
    assert exception["type"] == "RuntimeError"
    assert exception["value"] == "upload refused for [redacted]"
    assert "ptrt-" not in envelopes


def test_without_a_dsn_the_sdk_is_not_loaded():
    loaded = "import django, sys; django.setup(); print('sentry_sdk' in sys.modules)"
    probe = subprocess.run(
        [sys.executable, "-c", loaded],
        cwd=BASE_DIR, env={**os.environ, "MARSHA_RUNNER_ENV_FILE": "env.d/test", "SENTRY_DSN": ""},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip().splitlines()[-1] == "False", probe.stderr
