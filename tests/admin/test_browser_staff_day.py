"""The staff admin in a real day, in Chromium (issue 16): the UI defects staff tripped over, a
view-only user's walk, and one staff day end to end: an upload through the API made ready by
a runner (the dev runner client: real ffmpeg over uvicorn), then each action and its outcome.

Playwright drives Debian's /usr/bin/chromium, launched by path; screenshots of each step land
in tests/admin/screenshots/ (git-ignored). One server and one browser per test, few page
loads: the wall time stays modest on a 2-core machine.
"""

import os
import re
from pathlib import Path

import pytest
import requests
from django.contrib.auth.models import Permission, User
from django.core.files.storage import storages
from django.db import connections
from django_peertube_runner_connector.models import RunnerJobState

from marsha_runner.devrunner.client import HLS_JOB, RunnerClient
from marsha_runner.runners.models import Runner, RunnerJob, RunnerRegistrationToken
from marsha_runner.runners.tokens import runner_seed
from marsha_runner.storage import legacy_storage
from marsha_runner.videos.constants import StorageLocation, TranscodePipeline, UploadState
from marsha_runner.videos.models import Video
from tests.factories import VideoFactory
from tests.runners.factories import job_tree
from tests.runners.media import make_clip

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.ffmpeg]

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).parent / "screenshots" / "staff_day"
REGISTRATION_TOKEN = "ptrrt-5e1f-staff-day-registration"
LEGACY_STAMP = 1_600_000_000


@pytest.fixture
def browser(live_server_url, monkeypatch):
    """A page in headless Chromium; every request off this server is refused (no CDN)."""
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # the ORM from Playwright's thread
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    outside = []
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        page = chromium.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(20_000)

        def refuse_outside(route):
            outside.append(route.request.url)
            route.abort()

        page.route(
            re.compile(rf"^(?!{re.escape(live_server_url)}).*"),
            refuse_outside,
        )
        page.outside = outside
        page.errors = []
        page.on("pageerror", lambda err: page.errors.append(str(err)))
        try:
            yield page
            chromium.close()
        finally:
            # The test's ORM calls ran while Playwright's loop runs: Django kept their
            # connection in a context of its own, closed here or left borrowed from the pool.
            connections.close_all()


def shot(page, name):
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def login(page, base, username, password):
    page.goto(f"{base}/admin/login/?next=/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_selector("#user-tools")


def messages(page) -> str:
    page.wait_for_selector("ul.messagelist")
    return page.inner_text("ul.messagelist")


def run_action_from_page(page, base, video, action):
    """The action's button on the video's page, its confirmation, then the outcome."""
    page.goto(f"{base}/admin/videos/video/{video.pk}/change/")
    page.click(f'button.object-action[data-action="{action}"]')
    page.wait_for_selector("#action-objects")
    confirmation = page.inner_text("#content")
    page.click("#confirm-action")
    return confirmation, messages(page)


def state_of(video) -> str:
    return Video.objects.values_list("upload_state", flat=True).get(pk=video.pk)


# --- The UI defects, and a view-only user's walk --------------------------------------------


@pytest.fixture
def fleet(live_server_url):
    runner_seed(registration_token=REGISTRATION_TOKEN, runner_name="gpu-1", runner_token="ptrt-1")
    runner_seed(registration_token="ptrrt-77aa-second", runner_name=None, runner_token=None)
    video = VideoFactory(title="Physics 101", processing_stamp=1_700_000_000)
    _tv, parent, _children = job_tree(directory=video.output_prefix(1_700_000_000))
    RunnerJob.objects.filter(pk=parent.pk).update(
        runner=Runner.objects.get(name="gpu-1"), state=RunnerJobState.PROCESSING
    )
    viewer = User.objects.create_user("viewer", password="viewer-password", is_staff=True)
    viewer.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label__in=["runners", "videos"], codename__startswith="view_"
        )
    )
    User.objects.create_user("ops", password="ops-password", is_staff=True).user_permissions.add(
        *Permission.objects.filter(codename__in=["view_runnerjob", "ping_runners"])
    )
    return {"url": live_server_url, "job": parent}


def test_ui_defects_and_a_view_only_walk(browser, fleet):
    page, base = browser, fleet["url"]

    # 6. A view-only user reads every list and detail, and no registration token's value.
    login(page, base, "viewer", "viewer-password")
    assert page.locator("#user-tools a", has_text="View site").count() == 0  # 8: no 404 link
    page.goto(f"{base}/admin/runners/runnerregistrationtoken/")
    listing = page.inner_text("#result_list")
    assert "ptrrt-5e1f…" in listing and "ptrrt-77aa…" in listing  # 9: told apart, masked
    page.click("#result_list th a >> text=ptrrt-5e1f…")
    page.wait_for_selector("div.field-masked_token")
    assert REGISTRATION_TOKEN not in page.content()
    assert page.locator("#copy-registration-token").count() == 0
    shot(page, "01-view-only-token")
    # 2. Jobs named by kind, resolution and title: list, filter, detail title.
    page.goto(f"{base}/admin/runners/runnerjob/")
    assert "Physics 101" in page.inner_text("#result_list")
    assert "gpu-1" in page.inner_text("#changelist-filter")
    assert "object (" not in page.content()
    page.goto(f"{base}/admin/runners/runnerjob/{fleet['job'].pk}/change/")
    assert "HLS 720p of “Physics 101”" in page.inner_text("#content")
    shot(page, "02-job-named")
    assert page.locator("#ping-runners").count() == 0  # no permission to ping
    # 9. The runner list fits the page; "last contact", not "LASTCONTACT".
    page.goto(f"{base}/admin/runners/runner/")
    width = page.evaluate("document.querySelector('#result_list').scrollWidth")
    assert width <= 1280 - 40, width
    assert "LASTCONTACT" not in page.inner_text("#result_list thead")
    page.click("#result_list th a >> text=gpu-1")
    page.wait_for_selector("div.field-current_jobs")
    assert "HLS 720p of “Physics 101”" in page.inner_text("div.field-current_jobs")  # 6
    shot(page, "03-runner-current-jobs")

    # 7. Ping runners: a button, no job selected, the number of connected runners said.
    page.context.clear_cookies()
    login(page, base, "ops", "ops-password")
    runner = RunnerClient(base, "ptrt-1", job_types=[HLS_JOB])
    runner.connect()
    try:
        page.goto(f"{base}/admin/runners/runnerjob/")
        page.click("#ping-runners")
        assert "1 connected runner(s) pinged" in messages(page)
        assert runner.wait_ping(timeout=20)
    finally:
        runner.disconnect()
    shot(page, "04-ping")

    # 8. Swagger UI and ReDoc served by us: they render with every outside request refused.
    for url, ready in (("/api/schema/docs/", ".swagger-ui .info"), ("/api/schema/redoc/", "h1")):
        page.goto(f"{base}{url}")
        page.wait_for_selector(ready)
    assert page.outside == [] and page.errors == [], (page.outside, page.errors)
    shot(page, "05-redoc-offline")


# --- One staff day end to end ---------------------------------------------------------------


def api_upload(base, tmp_path, title) -> str:
    """An upload as a platform makes it: create, initiate, post the file, upload-ended."""
    user = User.objects.create_user("uploader", password="uploader-password-1")
    user.user_permissions.add(
        Permission.objects.get(codename="change_video", content_type__app_label="videos")
    )
    token = requests.post(
        f"{base}/api/token/",
        json={"username": "uploader", "password": "uploader-password-1"},
        timeout=30,
    ).json()["access"]
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    api = f"{base}/api/videos"
    clip = make_clip(tmp_path / "clip.mp4", width=640, height=360, fps=25, seconds=2)
    video_id = session.post(f"{api}/", json={"title": title}, timeout=30).json()["id"]
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
        f"{api}/{video_id}/upload-ended/", json={"file_key": upload["fields"]["key"]}, timeout=60
    )
    assert ended.status_code == 200, ended.text
    return video_id


def test_a_staff_day(browser, live_server_url, videos_root, legacy_root, tmp_path, settings):
    page, base = browser, live_server_url
    User.objects.create_superuser("staff", "staff@example.org", "staff-password")
    runner_token = runner_seed(
        registration_token=REGISTRATION_TOKEN, runner_name="gpu-1", runner_token="ptrt-gpu-1"
    ).runner_token
    runner = RunnerClient(base, runner_token, workdir=tmp_path / "runner", job_types=[HLS_JOB])
    (tmp_path / "runner").mkdir()

    def runner_works(jobs):
        assert runner.run_until_idle(timeout=180, idle=1) == jobs

    # Upload → ready: the API, then the runner.
    video = Video.objects.get(id=api_upload(base, tmp_path, "Monday lecture"))
    runner_works(2)  # 360p and 240p
    assert state_of(video) == UploadState.READY
    login(page, base, "staff", "staff-password")
    page.goto(f"{base}/admin/videos/video/{video.pk}/change/")
    page.wait_for_selector('#hls-player[data-state="manifest-loaded"]')
    tree = page.inner_text("#job-tree")
    assert "Completed" in tree and "gpu-1" in tree
    shot(page, "10-ready")
    page.click("#job-tree tbody tr >> nth=0 >> a")  # a job of its tree, by its link
    page.wait_for_selector("div.field-failure_history")
    assert "of “Monday lecture”" in page.inner_text("#content")
    page.go_back()
    # Its jobs, by a link, named by title.
    page.click("#jobs-of-this-video")
    page.wait_for_selector("#result_list")
    assert page.locator("#result_list tbody tr").count() == 2
    assert "Monday lecture" in page.inner_text("#result_list")
    shot(page, "11-jobs-of-the-video")

    # Re-trigger: enqueued, ready again with a new version (the old one served meanwhile).
    served = Video.objects.get(pk=video.pk).uploaded_on
    confirmation, outcome = run_action_from_page(page, base, video, "retranscode")
    # Its upload was released once ready: the top rendition is read where it is.
    assert "will be transcoded again from its 360p rendition" in confirmation
    assert "stays ready" in confirmation
    assert "Monday lecture" in outcome and "transcoding again" in outcome
    shot(page, "12-retrigger-enqueued")
    runner_works(2)
    video.refresh_from_db()
    assert video.upload_state == UploadState.READY and video.uploaded_on > served

    # Transcode missing: its ladder is complete, said as such.
    _confirmation, outcome = run_action_from_page(page, base, video, "transcode_missing")
    assert "skipped" in outcome and "ladder is complete" in outcome, outcome
    shot(page, "13-transcode-missing-complete")

    # Cancel a running Re-trigger: the video stays ready, serving, with the failure noted.
    run_action_from_page(page, base, video, "retranscode")
    job = RunnerJob.objects.filter(state=RunnerJobState.PENDING).order_by("-createdAt").first()
    page.goto(f"{base}/admin/runners/runnerjob/?state__exact=1")
    page.check(f'input.action-select[value="{job.pk}"]')
    page.select_option("select[name=action]", "cancel_jobs")
    page.click("button[name=index]")
    page.wait_for_selector("#action-objects")
    assert "Monday lecture" in page.inner_text("#action-objects")
    page.click("#confirm-action")
    assert "cancelled, with 1 dependent job(s)" in messages(page)
    video.refresh_from_db()
    assert video.upload_state == UploadState.READY, video.upload_error_reason
    # The public reason says a new version failed; the detail, for staff, says why.
    assert video.upload_error_reason.startswith("The new version could not be made")
    assert "cancel" in video.upload_error_detail.lower(), video.upload_error_detail
    page.goto(f"{base}/admin/videos/video/{video.pk}/change/")
    assert "cancel" in page.inner_text("div.field-upload_error_detail").lower()
    page.wait_for_selector('#hls-player[data-state="manifest-loaded"]')  # still plays
    shot(page, "14-cancelled-still-ready")

    # Switch a legacy AWS video to the runners: its mp4 copied by the task, then ready.
    legacy = VideoFactory(
        title="Legacy seminar", upload_state=UploadState.READY,
        transcode_pipeline=TranscodePipeline.AWS, storage_location=StorageLocation.AWS,
        uploaded_on=Video.stamp_to_datetime(LEGACY_STAMP), resolutions=[360],
    )  # fmt: skip
    mp4 = make_clip(tmp_path / "legacy.mp4", width=640, height=360, fps=25, seconds=2)
    with mp4.open("rb") as handle:
        legacy_storage().save(legacy.legacy_mp4_key(LEGACY_STAMP, 360), handle)
    confirmation, outcome = run_action_from_page(page, base, legacy, "switch_to_peertube")
    assert "legacy 360p mp4" in confirmation and "Legacy seminar" in outcome
    runner_works(2)
    legacy.refresh_from_db()
    assert (legacy.upload_state, legacy.transcode_pipeline) == (
        UploadState.READY,
        TranscodePipeline.PEERTUBE,
    )
    shot(page, "15-switched")

    # Migrate: refused for a video on the local disk, with the location the page shows.
    _confirmation, outcome = run_action_from_page(page, base, legacy, "migrate_to_scaleway")
    assert "skipped" in outcome and "local disk" in outcome, outcome

    # Delete finished jobs, select all: the served versions' jobs stay.
    page.goto(f"{base}/admin/runners/runnerjob/")
    page.check("#action-toggle")
    if page.locator(".actions .question a").count():
        page.click(".actions .question a")  # "select all N"
    page.select_option("select[name=action]", "delete_finished_jobs")
    page.click("button[name=index]")
    page.wait_for_selector("#action-objects")
    assert "served version" in page.inner_text("#content")
    page.click("#confirm-action")
    assert "finished job(s) deleted" in messages(page)
    shot(page, "16-delete-finished")
    page.goto(f"{base}/admin/videos/video/{video.pk}/change/")
    assert "no runner job" not in page.inner_text("div.field-job_tree")

    # Registration tokens: generate one, read its value (superuser), revoke it.
    page.goto(f"{base}/admin/runners/runnerregistrationtoken/")
    page.click("#generate-registration-token")
    page.wait_for_selector("#registration-token")
    fresh = RunnerRegistrationToken.objects.order_by("-createdAt").first()
    assert page.inner_text("#registration-token") == fresh.registrationToken
    shot(page, "17-token")
    assert page.outside == [], page.outside
    assert storages["videos"].exists(video.master_playlist_key(video.active_stamp))
