"""The staff admin in a real browser: Playwright driving Debian's chromium over uvicorn.

Playwright cannot download its own browsers here: /usr/bin/chromium (installed by .ci/run when
missing) is launched by path, headless, with --no-sandbox when running as root. Screenshots of
each step land in tests/admin/screenshots/ (git-ignored).
"""

import os
import subprocess
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.files.storage import storages
from django.db import connections
from django.utils import timezone
from django_peertube_runner_connector.models import RunnerJobState

from marsha_runner.runners.models import Runner, RunnerJob
from marsha_runner.runners.tokens import runner_seed
from marsha_runner.storage import storage_public_url
from marsha_runner.videos.constants import TranscodePipeline, UploadState
from marsha_runner.videos.models import Video
from tests.factories import VideoFactory
from tests.runners.factories import job_tree
from tests.runners.media import make_clip, store_clip

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.ffmpeg]

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).parent / "screenshots"
STAMP = 1_700_000_000
JOB_TOKEN = "ptrjt-browser-secret-token-0001"


def hls_version(root: Path, video: Video, stamp: int) -> None:
    """A real HLS version in the video storage: master, rendition playlist, fragmented mp4."""
    prefix = root / video.output_prefix(stamp)
    prefix.mkdir(parents=True)
    make_clip(prefix / "src.mp4", width=426, height=240, seconds=2)
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(prefix / "src.mp4"), "-c", "copy",
         "-f", "hls", "-hls_playlist_type", "vod", "-hls_segment_type", "fmp4",
         "-hls_flags", "single_file",
         "-hls_segment_filename", str(prefix / f"{stamp}-240-fragmented.mp4"),
         str(prefix / f"{stamp}-240.m3u8")],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    (prefix / "src.mp4").unlink()
    (prefix / "master.m3u8").write_text(
        "#EXTM3U\n#EXT-X-VERSION:7\n"
        '#EXT-X-STREAM-INF:BANDWIDTH=300000,RESOLUTION=426x240,CODECS="avc1.64000d,mp4a.40.2"\n'
        f"{stamp}-240.m3u8\n"
    )


@pytest.fixture
def scenario(videos_root, live_server_url, settings):
    User.objects.create_superuser("staff", "staff@example.org", "staff-password")
    runner_seed(registration_token="ptrrt-browser", runner_name="r1", runner_token="ptrt-r1")
    errored = VideoFactory(
        title="Errored lecture", upload_state=UploadState.ERROR,
        upload_error_reason="Transcoding errored: boom", processing_stamp=STAMP,
        launched_stamp=STAMP,
    )  # fmt: skip
    store_clip(videos_root, errored.source_key(STAMP), width=426, height=240, seconds=2)
    _tv, parent, children = job_tree(directory=errored.output_prefix(STAMP))
    RunnerJob.objects.filter(pk=parent.pk).update(
        state=RunnerJobState.ERRORED, error="boom", failures=5, finishedAt=timezone.now(),
        runner=Runner.objects.get(name="r1"), processingJobToken=JOB_TOKEN,
    )  # fmt: skip
    RunnerJob.objects.filter(pk=children[0].pk).update(state=RunnerJobState.PARENT_ERRORED)

    ready = VideoFactory(
        title="Ready lecture", upload_state=UploadState.READY,
        transcode_pipeline=TranscodePipeline.PEERTUBE, resolutions=[240],
        uploaded_on=Video.stamp_to_datetime(STAMP), processing_stamp=STAMP,
    )  # fmt: skip
    hls_version(videos_root, ready, STAMP)
    ready.urls = {
        "manifests": {
            "hls": storage_public_url(storages["videos"], ready.master_playlist_key(STAMP))
        }
    }
    ready.save()
    return {"url": live_server_url, "errored": errored, "ready": ready, "job": parent}


@pytest.fixture
def page(scenario, monkeypatch):
    """Set up after the server (torn down before it). Playwright's sync API keeps an event
    loop in this thread, which Django takes for an async context: the test's own ORM calls
    are synchronous, as pytest-django documents for Playwright.

    With that loop running, Django keeps this thread's connections in a context of their own
    (asgiref's Local), apart from the ones the test used before: a connection the test opens
    in here is closed in here, or it stays borrowed from the pool after the pool is closed and
    PostgreSQL refuses to drop the test database ("being accessed by other users")."""
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    SCREENSHOTS.mkdir(exist_ok=True)
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=args
            )
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            yield page
            browser.close()
        finally:
            connections.close_all()  # this context's connections, back to the pool


def shot(page, name):
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_staff_scenario(page, scenario):
    base = scenario["url"]
    errored, ready, job = scenario["errored"], scenario["ready"], scenario["job"]

    # Log in.
    page.goto(f"{base}/admin/login/?next=/admin/")
    page.fill("#id_username", "staff")
    page.fill("#id_password", "staff-password")
    page.click("input[type=submit]")
    page.wait_for_selector("#queue-health")
    shot(page, "01-index-health")

    # The health panel: one errored job in 24 h, one video in error, one runner online.
    figure = page.locator('#queue-health a[data-figure="errored jobs (24 h)"]')
    assert figure.inner_text() == "1"
    assert page.locator('#queue-health a[data-figure="videos in error"]').inner_text() == "1"
    assert page.locator('#queue-health a[data-figure="runners online"]').inner_text() == "1"

    # Filter the runner jobs by state, from the changelist's filter.
    page.goto(f"{base}/admin/runners/runnerjob/")
    page.click("#changelist-filter >> text=Errored")
    page.wait_for_url("**state__exact=4**")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 1
    assert rows.first.locator(".job-state").inner_text() == "Errored"
    shot(page, "02-jobs-errored")

    # Open the job: its payload as formatted JSON, no token in it.
    rows.first.locator("th a").click()
    page.wait_for_selector("text=private payload")
    html = page.content()
    assert str(job.uuid) in html
    assert '"videoUUID"' in html and '"output"' in html
    assert JOB_TOKEN not in html and JOB_TOKEN[:8] not in html
    shot(page, "03-job-payload")

    # Re-trigger transcoding on the errored video, through its confirmation page.
    page.goto(f"{base}/admin/videos/video/?upload_state__exact=error")
    page.check(f'input.action-select[value="{errored.pk}"]')
    page.select_option("select[name=action]", "retranscode")
    page.click("button[name=index]")
    page.wait_for_selector("#action-objects")
    assert "will be transcoded again from its kept upload" in page.inner_text("#action-objects")
    shot(page, "04-retranscode-confirmation")
    page.click("#confirm-action")
    page.wait_for_selector("ul.messagelist")
    messages = page.inner_text("ul.messagelist")
    done = "Errored lecture (processing): transcoding again from its kept upload (enqueued)."
    assert done in messages
    assert "1 done, 0 skipped" in messages
    shot(page, "05-retranscode-done")
    errored.refresh_from_db()
    assert errored.upload_state == UploadState.PROCESSING
    page.goto(f"{base}/admin/videos/video/?q={errored.pk}")
    assert "processing" in page.inner_text("#result_list")

    # The HLS player of a ready video loads its manifest (vendored hls.js, no CDN).
    page.goto(f"{base}/admin/videos/video/{ready.pk}/change/")
    page.wait_for_selector('#hls-player[data-state="manifest-loaded"]', timeout=20_000)
    assert page.get_attribute("#hls-player", "data-levels") == "1"
    scripts = [s.get_attribute("src") for s in page.locator("script[src]").all()]
    assert any(s.endswith("videos/vendor/hls.js/hls.min.js") for s in scripts)
    assert all(s.startswith("/") for s in scripts)  # every script from this server
    shot(page, "06-player")
