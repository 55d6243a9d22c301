"""The README's upload walkthrough, run as written (bash, curl, ffmpeg) against uvicorn with
`make runner` running, as a new user follows it: it must end ``ready``, print each step's
answer, and write nothing outside its own ``mktemp -d`` folder."""

import os
import re
import subprocess
from urllib.parse import urlparse

import pytest
from django.contrib.auth.models import User

from tests.videos.dev_runner import ROOT, start_make_runner, wait_for_log

pytestmark = [pytest.mark.e2e, pytest.mark.ffmpeg]


def walkthrough() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Uploading a video", 1)[1]
    return re.search(r"```bash\n(.*?)```", section, re.S)[1]


def test_the_readme_walkthrough_ends_ready(
    videos_root, live_server_url, seeded_runner_token, tmp_path
):
    User.objects.create_superuser("admin", "admin@example.com", "admin")  # as `make run` seeds
    port = urlparse(live_server_url).port
    runner_log = tmp_path / "runner.log"
    runner = start_make_runner(port, runner_log)
    cwd, tmp = tmp_path / "cwd", tmp_path / "tmp"
    cwd.mkdir()
    tmp.mkdir()
    try:
        wait_for_log(runner_log, "waiting for jobs", runner, timeout=60)
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", walkthrough()],
            cwd=cwd,
            env={**os.environ, "PORT": str(port), "TMPDIR": str(tmp)},
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        runner.terminate()
        runner.wait(timeout=60)
    out = done.stdout
    assert done.returncode == 0, out + done.stderr + runner_log.read_text()
    print(out)

    assert "token: ok" in out and "upload: HTTP 204" in out
    for answer in (  # each call's JSON answer is on the screen
        '"upload_state":"pending"',
        '"fields":{"key":',
        '"upload_state":"processing"',
    ):
        assert answer in out.replace(" ", ""), answer
    assert out.rstrip().endswith("}")
    assert '"upload_state": "ready"' in out.rsplit("processing", 1)[1]
    assert seeded_runner_token not in out and '"access"' not in out  # no token on screen

    # The dev runner, like peertube-runner, works on two renditions at once: after the first
    # rung (480p alone, issue 18), two of the three others are taken before either is done.
    events = [
        ("took" if "took job" in line else "done", re.search(r" (\d+)p", line)[1])
        for line in runner_log.read_text().splitlines()
        if "took job" in line or " done in " in line
    ]
    assert events[:2] == [("took", "480"), ("done", "480")], events
    assert [e for e, _ in events][2:4] == ["took", "took"], events
    assert len(events) == 8, events  # 480p, then 720p, 360p, 240p

    assert list(cwd.iterdir()) == []  # nothing written where the reader stands
    (work,) = tmp.iterdir()
    assert {p.name for p in work.iterdir()} == {"clip.mp4", "upload.json", "answer.json"}
