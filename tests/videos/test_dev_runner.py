"""`make runner` (manage.py dev_runner) takes a real upload to ready over uvicorn.

The dev runner runs as a subprocess, as a developer starts it next to `make run`: its own
settings (env.d/development), the server found through PORT, the seeded dev runner token. It is
started before the upload (so the job reaches it by an ``available-jobs`` ping) and stopped by
SIGINT to its process group, as Ctrl-C does.
"""

import json
import os
import signal
import subprocess
import time
from urllib.parse import urlparse

import pytest
import requests

from marsha_runner.videos.constants import UploadState
from tests.videos.dev_runner import ROOT, start_make_runner, wait_for_log
from tests.videos.media import make_clip

pytestmark = [pytest.mark.e2e, pytest.mark.ffmpeg]


def test_make_runner_takes_an_upload_to_ready(
    videos_root,
    live_server_url,
    seeded_runner_token,
    jwt_session,
    tmp_path,
):
    port = urlparse(live_server_url).port
    log_path = tmp_path / "runner.log"
    runner = start_make_runner(port, log_path)
    try:
        wait_for_log(log_path, "waiting for jobs", runner, timeout=60)

        session = jwt_session(live_server_url)
        api = f"{live_server_url}/api/videos"
        clip = make_clip(tmp_path / "clip.mp4", height=360, fps=25, seconds=2)
        video_id = session.post(f"{api}/", json={"title": "Dev runner"}, timeout=30).json()["id"]
        upload = session.post(
            f"{api}/{video_id}/initiate-upload/",
            json={"filename": "clip.mp4", "mimetype": "video/mp4", "size": clip.stat().st_size},
            timeout=30,
        ).json()
        with clip.open("rb") as handle:
            posted = requests.post(
                upload["url"],
                data=upload["fields"],
                files={"file": ("clip.mp4", handle, "video/mp4")},
                timeout=60,
            )
        assert posted.status_code in (200, 201, 204), posted.text
        ended = session.post(
            f"{api}/{video_id}/upload-ended/",
            json={"file_key": upload["fields"]["key"]},
            timeout=60,
        )
        assert ended.json()["upload_state"] == UploadState.PROCESSING, ended.text

        deadline = time.monotonic() + 120
        while (body := session.get(f"{api}/{video_id}/", timeout=30).json())[
            "upload_state"
        ] == UploadState.PROCESSING:
            assert runner.poll() is None, f"make runner exited:\n{log_path.read_text()}"
            assert time.monotonic() < deadline, f"not ready after 120 s:\n{log_path.read_text()}"
            time.sleep(0.2)
        assert body["upload_state"] == UploadState.READY, (body, log_path.read_text())
        assert body["resolutions"] == [240, 360]
    finally:
        if runner.poll() is None:
            os.killpg(runner.pid, signal.SIGINT)  # Ctrl-C
        code = runner.wait(timeout=60)

    log = log_path.read_text()
    # make re-raises the Ctrl-C it got with its group; the runner itself stopped cleanly.
    assert code in (0, -signal.SIGINT), log
    assert log.count("took job ") == 2, log
    assert log.count(" done in ") == 2, log
    assert "stopping (SIGINT)" in log, log
    assert "stopped after 2 job(s)" in log, log
    assert seeded_runner_token not in log  # tokens never in logs


def dev_runner(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "python"), "manage.py", "dev_runner", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def test_dev_runner_stops_on_sigterm_with_a_summary(
    live_server_url,
    seeded_runner_token,
):
    runner = dev_runner("--url", live_server_url, "--runner-token", seeded_runner_token, "--json")
    deadline = time.monotonic() + 60
    seen = ""
    while "waiting for jobs" not in seen:
        assert time.monotonic() < deadline, seen
        seen += runner.stderr.readline()
    runner.send_signal(signal.SIGTERM)
    out, err = runner.communicate(timeout=30)
    assert runner.returncode == 0, seen + err
    assert "stopping (SIGTERM)" in err
    assert json.loads(out) == {"url": live_server_url, "jobs_done": 0}


def test_dev_runner_refused_token_is_a_command_error(live_server_url):
    runner = dev_runner("--url", live_server_url, "--runner-token", "ptrt-not-a-runner")
    out, err = runner.communicate(timeout=60)
    assert runner.returncode == 1, err
    assert "refused the runner" in err
    assert "ptrt-not-a-runner" not in err  # not even a wrong token is echoed
