"""Progress over every worker (``--status``, the admin pages) and the staff enqueue."""

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import call_command
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from marsha_runner.migration import run
from marsha_runner.migration.models import MigrationLock, MigrationObject, MigrationVideo
from marsha_runner.migration.staff import QUEUE_DOWN, MigrationRefused, video_migration_enqueue
from marsha_runner.migration.tasks import migrate_video_to_scaleway
from marsha_runner.videos.constants import StorageLocation, TranscodePipeline, UploadState
from marsha_runner.videos.models import Video

STAMP = 1_600_000_000
MB = 1024 * 1024


def legacy(location=StorageLocation.AWS) -> Video:
    return Video.objects.create(
        title="legacy",
        upload_state=UploadState.READY,
        uploaded_on=Video.stamp_to_datetime(STAMP),
        transcode_pipeline=TranscodePipeline.AWS,
        storage_location=location,
        resolutions=[240],
    )


@pytest.fixture
def progress_rows(db):
    """Four legacy videos: one migrated, one failed, one running (a live lease, half its
    bytes verified a minute ago), one never started."""
    done = legacy(StorageLocation.SCALEWAY)
    failed, running, untouched = legacy(), legacy(), legacy()
    now = timezone.now()
    MigrationVideo.objects.create(
        video=done, state="migrated", objects_total=2, objects_done=2, bytes_total=20 * MB,
        bytes_done=20 * MB, attempts=1,
    )  # fmt: skip
    MigrationVideo.objects.create(
        video=failed, state="failed", reason="mp4/x.mp4: content differs after copy.",
        objects_total=2, objects_done=1, bytes_total=20 * MB, bytes_done=10 * MB, attempts=1,
    )  # fmt: skip
    MigrationVideo.objects.create(
        video=running, state="running", objects_total=2, objects_done=1, bytes_total=20 * MB,
        bytes_done=10 * MB, attempts=1,
    )  # fmt: skip
    MigrationLock.objects.create(
        video=running,
        owner="w:1:a",
        host="elsewhere",
        pid=1,
        expires_on=now + timedelta(minutes=2),
    )
    MigrationObject.objects.create(
        video=running,
        key="a",
        size=60 * MB,
        state="verified",
        verified_on=now - timedelta(seconds=60),
    )
    MigrationObject.objects.create(video=running, key="b", size=10 * MB, state="verified",
                                   verified_on=now)  # fmt: skip
    MigrationObject.objects.create(video=running, key="c", size=10 * MB, error="timeout")
    return {"done": done, "failed": failed, "running": running, "untouched": untouched}


def test_status_counts_every_worker_rate_and_eta(progress_rows):
    out = StringIO()
    call_command("migrate_to_scaleway", "--status", "--json", stdout=out)
    status = json.loads(out.getvalue())

    assert {k: status[k] for k in ("videos", "migrated", "failed", "running", "pending")} == {
        "videos": 4, "migrated": 1, "failed": 1, "running": 1, "pending": 1,
    }  # fmt: skip
    assert (status["objects"], status["objects_done"]) == (6, 4)
    assert (status["bytes"], status["bytes_done"]) == (60 * MB, 40 * MB)
    # 70 MB verified over the last 60 s; 20 MB left of the listed, 20 MB guessed for the
    # unlisted video (the average of the listed ones).
    assert status["bytes_per_second"] == pytest.approx(70 * MB / 60, rel=0.05)
    assert status["bytes_remaining_estimate"] == 40 * MB
    assert status["eta_seconds"] == pytest.approx(40 * 60 / 70, abs=2)
    assert status["last_errors"] == [
        {
            "video": str(progress_rows["failed"].id),
            "reason": "mp4/x.mp4: content differs after copy.",
            "on": status["last_errors"][0]["on"],
        }
    ]
    text = StringIO()
    call_command("migrate_to_scaleway", "--status", stdout=text)
    assert "videos: 1/4 migrated, 1 running, 1 failed, 1 pending" in text.getvalue()
    assert f"FAILED {progress_rows['failed'].id}" in text.getvalue()


def staff(*, can_view: bool) -> User:
    user = User.objects.create_user(username="staff", password="pw", is_staff=True)
    if can_view:
        user.user_permissions.add(Permission.objects.get(codename="view_migrationvideo"))
    return user


def test_admin_progress_page_and_per_video_page(client, progress_rows):
    client.force_login(staff(can_view=True))
    page = client.get(reverse("admin:migration_migrationvideo_changelist")).content.decode()
    assert "Migration to Scaleway, every worker" in page
    assert "<th>Videos migrated</th><td>1 of 4</td>" in page
    assert "content differs after copy." in page

    running = progress_rows["running"]
    page = client.get(reverse("admin:migration_video_progress", args=[running.id]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "<th>State</th><td>running</td>" in html
    assert "<td>1 of 2 verified</td>" in html and "<li>c: timeout</li>" in html
    untouched = client.get(
        reverse("admin:migration_video_progress", args=[progress_rows["untouched"].id])
    )
    assert "<th>State</th><td>not started</td>" in untouched.content.decode()
    missing = reverse(
        "admin:migration_video_progress", args=["0" * 8 + "-0000-0000-0000-" + "0" * 12]
    )
    assert client.get(missing).status_code == 404


def test_admin_progress_needs_the_view_permission(client, progress_rows):
    client.force_login(staff(can_view=False))
    url = reverse("admin:migration_video_progress", args=[progress_rows["running"].id])
    assert client.get(url).status_code == 403
    assert client.get(reverse("admin:migration_migrationvideo_changelist")).status_code == 403


def test_a_broker_failure_is_caught_where_it_happens_not_around_on_commit(
    db, monkeypatch, django_capture_on_commit_callbacks, caplog
):
    """Inside a transaction the broker is called after commit: its failure is logged and
    recorded on the video's progress there, and nothing escapes the commit (issue 15)."""
    video = legacy()

    def broker_down(*args, **kwargs):
        raise ConnectionRefusedError("broker down")

    monkeypatch.setattr(migrate_video_to_scaleway, "delay", broker_down)
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        answer = video_migration_enqueue(video=video)

    assert answer == "migration to Scaleway enqueued"
    row = MigrationVideo.objects.get(video=video)
    assert (row.state, row.reason) == ("failed", QUEUE_DOWN)
    assert "Could not enqueue the migration of video" in caplog.text


def test_a_broker_failure_outside_a_transaction_is_refused_at_once(transactional_db, monkeypatch):
    video = legacy()

    def broker_down(*args, **kwargs):
        raise ConnectionRefusedError("broker down")

    monkeypatch.setattr(migrate_video_to_scaleway, "delay", broker_down)
    with pytest.raises(MigrationRefused, match="the task queue did not answer"):
        video_migration_enqueue(video=video)
    assert MigrationVideo.objects.get(video=video).state == "failed"


def test_fan_out_stops_at_a_broker_failure_and_says_how_many_were_sent(db, monkeypatch):
    videos = [legacy() for _ in range(3)]
    sent = []

    def send(*, video_id, delete_source=False):
        if len(sent) == 2:
            raise ConnectionRefusedError("broker down")
        sent.append(video_id)

    monkeypatch.setattr(run, "migration_task_send", send)
    result = run.videos_migration_fan_out()
    assert result == {"queued": 2, "error": "the task queue did not answer: broker down"}
    assert MigrationVideo.objects.filter(state="queued").count() == len(videos)
