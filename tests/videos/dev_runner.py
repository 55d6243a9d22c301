"""`make runner` started as a developer starts it, for the tests that need the dev runner."""

import os
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def start_make_runner(port: int, log_path: Path) -> subprocess.Popen:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTEST_VERSION", "MARSHA_RUNNER_ENV_FILE", "RUNNERS_CALLBACK_DOMAIN")
        and not k.startswith("PYTEST_")
    }
    env["PORT"] = str(port)
    return subprocess.Popen(
        ["make", "--no-print-directory", "runner"],
        cwd=ROOT,
        env=env,
        stdout=log_path.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, so a test can Ctrl-C it
    )


def wait_for_log(log_path: Path, text: str, process: subprocess.Popen, timeout: float):
    deadline = time.monotonic() + timeout
    while text not in log_path.read_text():
        assert process.poll() is None, f"make runner exited early:\n{log_path.read_text()}"
        assert time.monotonic() < deadline, f"no {text!r} in:\n{log_path.read_text()}"
        time.sleep(0.1)
