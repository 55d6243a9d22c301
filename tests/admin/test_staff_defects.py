"""The staff admin in a real day (issue 16): one test per defect staff tripped over, each
written first and failing on the code of 2026-12-02. The browser ones are in
``test_browser_staff_day.py``."""

import logging
import subprocess
from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, storages
from django.utils import timezone
from django_peertube_runner_connector.models import RunnerJobState

from marsha_runner.runners.models import Runner, RunnerJob, RunnerRegistrationToken
from marsha_runner.runners.tokens import runner_seed
from marsha_runner.videos.constants import StorageLocation, TranscodePipeline, UploadState
from marsha_runner.videos.models import Video
from tests.factories import VideoFactory
from tests.runners.factories import job_tree

from .helpers import action_names, change, changelist, messages_of, post_action, staff_user
from .test_import_export import export, import_csv, parse

pytestmark = pytest.mark.django_db

STAMP = 1_700_000_000
OLD = STAMP - 1000


def errored_tree(video, stamp=STAMP, *, source_object=True):
    """The job tree of ``video``'s ``stamp``, its parent errored five times, child waiting."""
    _tv, parent, children = job_tree(
        directory=video.output_prefix(stamp), source_object=source_object
    )
    RunnerJob.objects.filter(pk=parent.pk).update(
        state=RunnerJobState.ERRORED, error="boom", failures=5, finishedAt=timezone.now()
    )
    RunnerJob.objects.filter(pk=children[0].pk).update(state=RunnerJobState.PARENT_ERRORED)
    return RunnerJob.objects.get(pk=parent.pk), children


# --- 1. Requeue of an errored job whose video is in error ----------------------------------------


def test_defect_1_requeue_without_its_source_is_refused_pointing_to_retrigger(client, videos_root):
    video = VideoFactory(
        title="Lost source", upload_state=UploadState.ERROR, upload_error_reason="boom",
        processing_stamp=STAMP, launched_stamp=STAMP,
    )  # fmt: skip
    parent, _children = errored_tree(video, source_object=False)  # its source is gone
    before = RunnerJob.objects.filter(pk=parent.pk).values().get()
    client.force_login(staff_user("requeue_runnerjob"))
    response = post_action(client, RunnerJob, "requeue_jobs", [parent], confirmed=True)
    messages = messages_of(response)
    assert RunnerJob.objects.filter(pk=parent.pk).values().get() == before, messages
    assert any("skipped" in m and "Re-trigger" in m for m in messages), messages


def test_defect_1_requeue_of_a_video_in_error_tells_the_truth(client, videos_root):
    """The source is kept: the job requeues and the video is processing again, as the
    message says, or the requeue is refused pointing to Re-trigger; never a requeue that
    leaves the video in error with its old reason."""
    video = VideoFactory(
        title="Kept source", upload_state=UploadState.ERROR, upload_error_reason="old reason",
        processing_stamp=STAMP, launched_stamp=STAMP,
    )  # fmt: skip
    storages["videos"].save(video.source_key(STAMP), ContentFile(b"kept upload"))
    parent, _children = errored_tree(video)
    client.force_login(staff_user("requeue_runnerjob"))
    response = post_action(client, RunnerJob, "requeue_jobs", [parent], confirmed=True)
    messages = " ".join(messages_of(response))
    video.refresh_from_db()
    state = RunnerJob.objects.get(pk=parent.pk).state
    if state == RunnerJobState.PENDING:
        assert video.upload_state == UploadState.PROCESSING, messages
        assert video.upload_error_reason == ""
        assert "processing" in messages
    else:
        assert state == RunnerJobState.ERRORED
        assert video.upload_state == UploadState.ERROR
        assert "Re-trigger" in messages


# --- 2. Objects named by what staff recognise ----------------------------------------------------


def test_defect_2_jobs_runners_tokens_are_named(client, videos_root):
    video = VideoFactory(title="Physics 101", processing_stamp=STAMP)
    _tv, parent, _children = job_tree(directory=video.output_prefix(STAMP))
    runner_seed(registration_token="ptrrt-9f3a-first", runner_name="gpu-1", runner_token="ptrt-1")
    runner = Runner.objects.get(name="gpu-1")
    RunnerJob.objects.filter(pk=parent.pk).update(runner=runner)
    client.force_login(staff_user("cancel_runnerjob", "unregister_runner"))

    html = post_action(client, RunnerJob, "cancel_jobs", [parent]).content.decode()
    assert "object (" not in html
    assert "720p" in html and "Physics 101" in html
    response = post_action(client, RunnerJob, "cancel_jobs", [parent], confirmed=True)
    assert any(m.startswith("HLS 720p of “Physics 101”") for m in messages_of(response))
    assert LogEntry.objects.get().object_repr == "HLS 720p of “Physics 101”"

    detail = client.get(change(RunnerJob, parent.pk)).content.decode()
    assert "object (" not in detail and "HLS 720p of “Physics 101”" in detail
    jobs = client.get(changelist(RunnerJob)).content.decode()
    assert "gpu-1" in jobs.split('id="changelist-filter"', 1)[1]  # the runner filter
    assert "object (" not in jobs

    html = post_action(client, Runner, "unregister", [runner]).content.decode()
    assert "object (" not in html and "gpu-1" in html
    token = RunnerRegistrationToken.objects.get()
    assert str(token).startswith("ptrrt-9f3a…") and str(token.createdAt.year) in str(token)


def test_defect_2_tokens_are_told_apart_in_the_list(admin_client):
    runner_seed(registration_token="ptrrt-aaaa-1111", runner_name=None, runner_token=None)
    runner_seed(registration_token="ptrrt-bbbb-2222", runner_name=None, runner_token=None)
    html = admin_client.get(changelist(RunnerRegistrationToken)).content.decode()
    assert "ptrrt-aaaa…" in html and "ptrrt-bbbb…" in html
    assert "1111" not in html and "2222" not in html  # still masked


# --- 3. Import updates titles of existing videos only --------------------------------------------


@pytest.fixture
def exported(admin_client):
    video = VideoFactory(
        title="Exported", upload_state=UploadState.READY,
        transcode_pipeline=TranscodePipeline.PEERTUBE, resolutions=[240],
        urls={"manifests": {"hls": "http://x/master.m3u8"}}, storage_location=None,
    )  # fmt: skip
    return video, parse(export(admin_client, Video, "csv"), "csv")


def test_defect_3_import_of_an_unknown_id_creates_nothing(admin_client, exported):
    video, rows = exported
    rows[0]["id"] = "00000000-0000-4000-8000-0000000000ff"
    rows[0]["title"] = "Invented"
    response = import_csv(admin_client, rows)
    assert Video.objects.count() == 1
    html = response.content.decode()
    assert "00000000-0000-4000-8000-0000000000ff" in html and "no such video" in html
    assert response.context.get("confirm_form") is None


def test_defect_3_reimport_keeps_every_other_field(admin_client, exported):
    video, rows = exported
    before = Video.objects.filter(pk=video.pk).values().get()
    rows[0]["title"] = "Renamed"
    response = import_csv(admin_client, rows)
    confirm = response.context["confirm_form"]
    admin_client.post("/admin/videos/video/process_import/", confirm.initial)
    after = Video.objects.filter(pk=video.pk).values().get()
    assert after["title"] == "Renamed"
    assert after["storage_location"] is None  # not ""
    changed = {k for k in before if before[k] != after[k]}
    assert changed <= {"title", "updated_on"}, changed


def test_defect_3_a_stale_row_says_changed_since_the_export(admin_client, exported):
    video, rows = exported
    Video.objects.filter(pk=video.pk).update(
        upload_state=UploadState.PROCESSING, updated_on=timezone.now() + timedelta(seconds=5)
    )
    rows[0]["title"] = "Renamed from an old export"
    html = import_csv(admin_client, rows).content.decode()
    assert "changed since the export" in html
    assert "ready" in html and "processing" in html  # the values, then and now
    assert "Changes only through the admin actions" not in html


# --- 4. A failed Re-trigger leaves a ready video ready -------------------------------------------


def test_defect_4_failed_retrigger_leaves_a_ready_video_ready(
    client, videos_root, django_capture_on_commit_callbacks
):
    from marsha_runner.videos.transitions import video_error

    video = VideoFactory(
        title="Healthy", upload_state=UploadState.READY, processing_stamp=OLD,
        launched_stamp=OLD, uploaded_on=Video.stamp_to_datetime(OLD),
        transcode_pipeline=TranscodePipeline.PEERTUBE, resolutions=[240],
        urls={"manifests": {"hls": "http://x/master.m3u8"}},
    )  # fmt: skip
    storages["videos"].save(video.rendition_video_key(OLD, 240), ContentFile(b"rendition"))
    client.force_login(staff_user("retranscode_video"))
    page = post_action(client, Video, "retranscode", [video]).content.decode()
    assert "stays ready" in page  # the confirmation warns what a failure would do
    with django_capture_on_commit_callbacks():
        post_action(client, Video, "retranscode", [video], confirmed=True)
    video.refresh_from_db()
    stamp = video.processing_stamp
    assert stamp != OLD
    failure = "Transcoding errored: boom"
    video_error(video_id=video.id, stamp=stamp, code="transcoding_failed", detail=failure)
    video.refresh_from_db()
    assert video.upload_state == UploadState.READY
    assert video.uploaded_on == Video.stamp_to_datetime(OLD)
    assert video.urls == {"manifests": {"hls": "http://x/master.m3u8"}}
    assert video.upload_error_reason.startswith("The new version could not be made")
    assert "boom" in video.upload_error_detail  # recorded for staff, and shown on its page
    assert "boom" in client.get(change(Video, video.pk)).content.decode()


# --- 5. Delete finished jobs keeps the served version's jobs -------------------------------------


def test_defect_5_delete_finished_keeps_the_served_versions_jobs(client, videos_root):
    video = VideoFactory(
        title="Served", upload_state=UploadState.READY, processing_stamp=STAMP,
        launched_stamp=STAMP, uploaded_on=Video.stamp_to_datetime(STAMP),
        transcode_pipeline=TranscodePipeline.PEERTUBE, resolutions=[360, 720],
    )  # fmt: skip
    _tv, served, served_children = job_tree(directory=video.output_prefix(STAMP))
    _tv, old, old_children = job_tree(directory=video.output_prefix(OLD))
    RunnerJob.objects.update(state=RunnerJobState.COMPLETED)
    client.force_login(staff_user("purge_runnerjob"))
    page = post_action(
        client, RunnerJob, "delete_finished_jobs", [old], select_across=True
    ).content.decode()
    assert "served" in page and "kept" in page
    post_action(
        client, RunnerJob, "delete_finished_jobs", [old], select_across=True, confirmed=True
    )
    assert set(RunnerJob.objects.values_list("pk", flat=True)) == {
        served.pk,
        *(c.pk for c in served_children),
    }


# --- 6. The registration token's value has its own permission ------------------------------------


def test_defect_6_view_only_user_cannot_read_the_registration_token(client):
    runner_seed(registration_token="ptrrt-secret-value-1234", runner_name=None, runner_token=None)
    token = RunnerRegistrationToken.objects.get()
    client.force_login(staff_user())
    html = client.get(change(RunnerRegistrationToken, token.pk)).content.decode()
    assert "ptrrt-secret-value-1234" not in html
    client.force_login(staff_user("reveal_runnerregistrationtoken", username="fleet"))
    html = client.get(change(RunnerRegistrationToken, token.pk)).content.decode()
    assert "ptrrt-secret-value-1234" in html


def test_defect_6_permissions_that_do_nothing_are_not_offered(admin_client):
    from django.contrib.auth.models import User

    user = User.objects.create_user("someone", is_staff=True)
    form = admin_client.get(f"/admin/auth/user/{user.pk}/change/").context["adminform"].form
    offered = set(form.fields["user_permissions"].queryset.values_list("codename", flat=True))
    assert "retranscode_video" in offered and "reveal_runnerregistrationtoken" in offered
    for idle in ("add_video", "delete_video", "add_runnerjob", "change_runnerjob", "add_runner"):
        assert idle not in offered, idle
    library = Permission.objects.filter(content_type__app_label="django_peertube_runner_connector")
    assert library.exists() and not (set(library.values_list("pk", flat=True)) & set(
        form.fields["user_permissions"].queryset.values_list("pk", flat=True)
    ))  # fmt: skip


# --- 7. Ping runners: a button, no selection, says how many --------------------------------------


def test_defect_7_ping_is_a_button_that_counts(client, monkeypatch):
    from marsha_runner.runners import staff

    pings = []  # the socket.io emission itself: tests/runners/test_redis_ping.py
    monkeypatch.setattr(staff, "runners_connected_count", lambda: 3)
    monkeypatch.setattr(staff, "runners_ping", lambda: pings.append(1))
    client.force_login(staff_user("ping_runners"))
    page = client.get(changelist(RunnerJob)).content.decode()
    assert 'id="ping-runners"' in page
    assert "ping_runners" not in action_names(client, RunnerJob)  # no job to select
    response = client.post("/admin/runners/runnerjob/ping/", follow=True)
    assert pings == [1]
    assert any("3 connected runner(s) pinged" in m for m in messages_of(response))
    client.force_login(staff_user(username="viewer"))
    assert client.post("/admin/runners/runnerjob/ping/").status_code == 403


# --- 8. View site and the API docs ---------------------------------------------------------------


def test_defect_8_view_site_and_docs_have_no_cdn(admin_client):
    index = admin_client.get("/admin/").content.decode()
    if "View site" in index:
        target = index.split("View site", 1)[0].rsplit('href="', 1)[1].split('"', 1)[0]
        assert admin_client.get(target).status_code == 200
    for url in ("/api/schema/docs/", "/api/schema/redoc/"):
        html = admin_client.get(url).content.decode()
        assert "cdn" not in html.lower() and "//unpkg" not in html, url


# --- 9. Wording ----------------------------------------------------------------------------------


def test_defect_9_wording(client, videos_root, caplog):
    ready_fs = VideoFactory(
        title="On disk", upload_state=UploadState.READY, storage_location=None,
        transcode_pipeline=TranscodePipeline.PEERTUBE, uploaded_on=Video.stamp_to_datetime(STAMP),
        resolutions=[240], processing_stamp=STAMP,
    )  # fmt: skip
    legacy = VideoFactory(title="Legacy", upload_state=UploadState.READY,
                          transcode_pipeline=TranscodePipeline.AWS,
                          storage_location=StorageLocation.AWS)  # fmt: skip
    client.force_login(
        staff_user("transcribe_video", "retranscode_video", "migrate_video", username="words")
    )
    # No double period; "1 video selected".
    response = post_action(client, Video, "transcribe", [legacy], confirmed=True)
    assert not any(".." in m for m in messages_of(response)), messages_of(response)
    page = post_action(client, Video, "retranscode", [legacy]).content.decode()
    assert "1 video selected" in page
    # Messages name the video as it is after the action.
    storages["videos"].save(ready_fs.rendition_video_key(STAMP, 240), ContentFile(b"x"))
    response = post_action(client, Video, "retranscode", [ready_fs], confirmed=True)
    assert not any("(ready)" in m for m in messages_of(response)), messages_of(response)
    # The location the page shows is the one the messages say and the filter finds.
    ready_fs.refresh_from_db()
    response = post_action(client, Video, "migrate_to_scaleway", [ready_fs], confirmed=True)
    assert not any("location none" in m for m in messages_of(response))
    listing = client.get(changelist(Video) + "?storage_location=local").content.decode()
    assert "On disk" in listing and "Legacy" not in listing
    # The job page says which job this one waits for.
    _tv, parent, children = job_tree(directory=ready_fs.output_prefix(STAMP + 1))
    client.force_login(staff_user(username="reader"))
    detail = client.get(change(RunnerJob, children[0].pk)).content.decode()
    assert "job that depends on this one" not in detail and "waits for" in detail.lower()
    runners = client.get(changelist(Runner)).content.decode()
    assert "lastContact" not in runners and "LASTCONTACT" not in runners.upper().replace(
        "LAST CONTACT", ""
    )
    # The health panel's time is for people.
    index = client.get("/admin/").content.decode()
    if 'id="queue-health"' in index:
        measured = index.split("Measured ", 1)[1].split(" (", 1)[0]
        assert "T" not in measured and "." not in measured.split(":")[-1], measured


def test_defect_9_transcribe_confirmation_logs_no_start(client, videos_root, caplog):
    video = VideoFactory(
        title="Talk", upload_state=UploadState.READY, processing_stamp=STAMP,
        transcode_pipeline=TranscodePipeline.PEERTUBE, uploaded_on=Video.stamp_to_datetime(STAMP),
        resolutions=[240],
    )  # fmt: skip
    _tv, parent, _ = job_tree(directory=video.output_prefix(STAMP), resolutions=(240,))
    RunnerJob.objects.filter(pk=parent.pk).update(state=RunnerJobState.COMPLETED)
    storages["videos"].save(video.rendition_video_key(STAMP, 240), ContentFile(b"x"))
    client.force_login(staff_user("transcribe_video"))
    with caplog.at_level(logging.INFO):
        page = post_action(client, Video, "transcribe", [video]).content.decode()
    assert "will be transcribed" in page, page
    assert not any("transcription job" in r.getMessage() for r in caplog.records)


# --- 10. No I/O in the request, none under the row lock ------------------------------------------


@pytest.fixture
def forbid_io(monkeypatch):
    """Any read or write of a stored file, or any ffmpeg/ffprobe run, raises while armed."""
    armed = {"on": False}
    real_open, real_save, real_run = (
        FileSystemStorage._open,
        FileSystemStorage._save,
        (subprocess.run),
    )

    def guard(real, what):
        def call(*args, **kwargs):
            if armed["on"]:
                raise AssertionError(f"{what} during the request")
            return real(*args, **kwargs)

        return call

    monkeypatch.setattr(FileSystemStorage, "_open", guard(real_open, "a storage read"))
    monkeypatch.setattr(FileSystemStorage, "_save", guard(real_save, "a storage write"))
    monkeypatch.setattr(subprocess, "run", guard(real_run, "an ffmpeg/ffprobe run"))
    return armed


def test_defect_10_actions_do_no_io_in_the_request(
    client, videos_root, legacy_root, forbid_io, django_capture_on_commit_callbacks
):
    from marsha_runner.storage import legacy_storage

    errored = VideoFactory(
        title="Errored", upload_state=UploadState.ERROR, processing_stamp=STAMP,
        launched_stamp=STAMP,
    )  # fmt: skip
    storages["videos"].save(errored.source_key(STAMP), ContentFile(b"kept upload"))
    ready = VideoFactory(
        title="Ready", upload_state=UploadState.READY, processing_stamp=STAMP,
        launched_stamp=STAMP, uploaded_on=Video.stamp_to_datetime(STAMP),
        transcode_pipeline=TranscodePipeline.PEERTUBE, resolutions=[360],
    )  # fmt: skip
    storages["videos"].save(ready.rendition_video_key(STAMP, 360), ContentFile(b"rendition"))
    legacy = VideoFactory(
        title="Legacy", upload_state=UploadState.READY, transcode_pipeline=TranscodePipeline.AWS,
        uploaded_on=Video.stamp_to_datetime(STAMP), resolutions=[480],
    )  # fmt: skip
    legacy_storage().save(legacy.legacy_mp4_key(STAMP, 480), ContentFile(b"legacy mp4"))
    client.force_login(
        staff_user("retranscode_video", "switch_pipeline_video", "transcode_missing_video")
    )
    forbid_io["on"] = True
    for action, video in (
        ("retranscode", errored),
        ("retranscode", ready),
        ("switch_to_peertube", legacy),
        ("transcode_missing", ready),
    ):
        page = post_action(client, Video, action, [video])
        assert page.status_code == 200, action
        with django_capture_on_commit_callbacks():  # the task is enqueued, not run
            response = post_action(client, Video, action, [video], confirmed=True)
        assert any("1 done" in m for m in messages_of(response)), (action, messages_of(response))
        video.refresh_from_db()
        assert video.upload_state == UploadState.PROCESSING, action
        Video.objects.filter(pk=video.pk).update(upload_state=UploadState.READY)


# --- What staff looked for: a job's earlier failures --------------------------------------------


def test_a_job_keeps_each_failure_with_time_and_runner(client, videos_root, settings):
    from marsha_runner.runners.failures import runner_job_failure_record

    settings.TRANSCODING_RUNNER_MAX_FAILURE = 5
    video = VideoFactory(title="Flaky", processing_stamp=STAMP)
    _tv, parent, _children = job_tree(directory=video.output_prefix(STAMP))
    runner_seed(registration_token="ptrrt-fail", runner_name="gpu-2", runner_token="ptrt-2")
    for message in ("ffmpeg died: first", "ffmpeg died: second"):
        RunnerJob.objects.filter(pk=parent.pk).update(
            state=RunnerJobState.PROCESSING, runner=Runner.objects.get(name="gpu-2")
        )
        runner_job_failure_record(job=RunnerJob.objects.get(pk=parent.pk), message=message)
    client.force_login(staff_user("requeue_runnerjob"))
    detail = client.get(change(RunnerJob, parent.pk)).content.decode()
    history = detail.split("field-failure_history", 1)[1].split("</div>\n", 3)
    history = "".join(history)
    assert "ffmpeg died: first" in history and "ffmpeg died: second" in history
    assert history.count("gpu-2") == 2
    # The library keeps the last message only, and a requeue clears even that: ours stay.
    RunnerJob.objects.filter(pk=parent.pk).update(
        state=RunnerJobState.ERRORED, finishedAt=timezone.now()
    )
    post_action(client, RunnerJob, "requeue_jobs", [parent], confirmed=True)
    assert RunnerJob.objects.get(pk=parent.pk).error is None
    detail = client.get(change(RunnerJob, parent.pk)).content.decode()
    assert "ffmpeg died: first" in detail and "ffmpeg died: second" in detail
