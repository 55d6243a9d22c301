"""cleanup_sources, purge_stale_uploads, prune_runner_jobs: effect, --dry-run changes nothing,
--json parses, a second run does nothing, exit codes. Files on a real filesystem storage."""

import json
import time
import uuid
from datetime import timedelta
from io import StringIO

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from django_peertube_runner_connector.models import RunnerJob, RunnerJobState, VideoFile

from marsha_runner.videos.constants import TranscodePipeline, UploadState
from marsha_runner.videos.models import Video
from tests.factories import VideoFactory
from tests.runners.factories import job_tree

pytestmark = pytest.mark.django_db

OLD = timezone.now() - timedelta(days=60)
S0, S1 = 1767261600, 1767265200


def run(command, *args) -> tuple[dict, int]:
    out = StringIO()
    try:
        call_command(command, "--json", *args, stdout=out)
        code = 0
    except CommandError as err:
        code = err.returncode
    return json.loads(out.getvalue()), code


def snapshot(videos_root):
    files = sorted(str(p.relative_to(videos_root)) for p in videos_root.rglob("*"))
    return (
        files,
        list(Video.objects.order_by("pk").values()),
        list(RunnerJob.objects.order_by("pk").values()),
        list(VideoFile.objects.order_by("pk").values()),
    )


def put(key, data=b"source"):
    storages["videos"].save(key, ContentFile(data))


def finished_video(state=UploadState.READY, stamp=S0, updated=OLD, **kwargs):
    video = VideoFactory(
        upload_state=state, processing_stamp=stamp, launched_stamp=stamp, **kwargs
    )
    Video.objects.filter(pk=video.pk).update(updated_on=updated)
    return video


def tree(video, stamp, state=RunnerJobState.COMPLETED, updated=OLD):
    """A job tree of ``video``'s version ``stamp`` (its source row at the source key)."""
    transcoded, parent, children = job_tree(
        directory=video.output_prefix(stamp), source_object=False
    )
    jobs = [parent, *children]
    RunnerJob.objects.filter(pk__in=[j.pk for j in jobs]).update(state=state, updatedAt=updated)
    return transcoded, jobs


# --- cleanup_sources ----------------------------------------------------------------------------


def test_cleanup_sources(videos_root):
    storage = storages["videos"]
    ready = finished_video()
    tree(ready, S0)
    put(ready.source_key(S0))
    errored = finished_video(state=UploadState.ERROR)
    put(errored.source_key(S0))  # never launched: no library row
    recent = finished_video(updated=timezone.now())
    put(recent.source_key(S0))
    busy = finished_video()
    put(busy.source_key(S1))
    tree(busy, S1, state=RunnerJobState.PENDING)  # a re-transcode reading it
    processing = finished_video(state=UploadState.PROCESSING)
    put(processing.source_key(S0))

    before = snapshot(videos_root)
    summary, code = run("cleanup_sources", "--dry-run")
    assert code == 0
    assert summary["counts"] == {"sources_deleted": 2, "sources_kept_in_use": 1}
    assert snapshot(videos_root) == before

    summary, code = run("cleanup_sources")
    assert code == 0
    assert summary["counts"] == {"sources_deleted": 2, "sources_kept_in_use": 1}
    deleted = {item["key"] for item in summary["items"]["sources_deleted"]}
    assert deleted == {ready.source_key(S0), errored.source_key(S0)}
    for key in deleted:
        assert not storage.exists(key)
        assert not VideoFile.objects.filter(filename=key).exists()
    assert not (videos_root / "tmp" / str(ready.id)).exists(), "empty folders go too"
    for key in (recent.source_key(S0), busy.source_key(S1), processing.source_key(S0)):
        assert storage.exists(key)
    assert VideoFile.objects.filter(filename=busy.source_key(S1)).exists()

    after = snapshot(videos_root)
    summary, code = run("cleanup_sources")
    assert (summary["counts"], code) == ({"sources_kept_in_use": 1}, 0)
    assert snapshot(videos_root) == after


def test_cleanup_sources_removes_a_library_row_whose_object_is_already_gone(videos_root):
    ready = finished_video()
    tree(ready, S0)  # its source row names tmp/<id>/video/S0, absent from storage
    summary, _ = run("cleanup_sources")
    assert summary["counts"] == {"sources_deleted": 1}
    assert not VideoFile.objects.filter(filename=ready.source_key(S0)).exists()
    assert run("cleanup_sources")[0]["counts"] == {}


# --- purge_stale_uploads ------------------------------------------------------------------------


def test_purge_stale_uploads(videos_root, settings):
    settings.STALE_UPLOAD_AGE = 3600
    storage = storages["videos"]
    old, fresh = int(time.time()) - 7200, int(time.time()) - 60
    nothing = VideoFactory(processing_stamp=old)
    half = VideoFactory(processing_stamp=old)
    put(half.source_key(old), b"half")
    served = VideoFactory(
        processing_stamp=old,
        uploaded_on=Video.stamp_to_datetime(S0),
        transcode_pipeline=TranscodePipeline.PEERTUBE,
        resolutions=[240],
    )
    put(served.source_key(old))
    recent = VideoFactory(processing_stamp=fresh)
    gone_old, gone_recent = uuid.uuid4(), uuid.uuid4()
    put(f"tmp/{gone_old}/video/{old}")
    put(f"tmp/{gone_recent}/video/{fresh}")

    before = snapshot(videos_root)
    summary, code = run("purge_stale_uploads", "--dry-run")
    assert code == 0
    expected = {
        "uploads_reset": 1,
        "uploads_errored": 1,
        "uploads_restored_ready": 1,
        "orphan_objects_deleted": 1,
    }
    assert summary["counts"] == expected
    assert snapshot(videos_root) == before

    summary, code = run("purge_stale_uploads")
    assert (summary["counts"], code) == (expected, 0)
    nothing.refresh_from_db()
    assert (nothing.upload_state, nothing.processing_stamp) == (UploadState.PENDING, None)
    half.refresh_from_db()
    assert half.upload_state == UploadState.ERROR
    assert half.upload_error_code == "upload_not_ended"
    assert "never ended" in half.upload_error_detail and "4 bytes" in half.upload_error_detail
    served.refresh_from_db()
    assert (served.upload_state, served.processing_stamp) == (UploadState.READY, None)
    assert not storage.exists(served.source_key(old))
    recent.refresh_from_db()
    assert (recent.upload_state, recent.processing_stamp) == (UploadState.PENDING, fresh)
    assert not storage.exists(f"tmp/{gone_old}/video/{old}")
    assert storage.exists(f"tmp/{gone_recent}/video/{fresh}")

    after = snapshot(videos_root)
    summary, code = run("purge_stale_uploads")
    assert (summary["counts"], code) == ({}, 0)
    assert snapshot(videos_root) == after


# --- prune_runner_jobs --------------------------------------------------------------------------


def test_prune_runner_jobs_keeps_current_versions(settings):
    settings.RUNNER_JOBS_RETENTION_DAYS = 30
    video = finished_video(stamp=S1, uploaded_on=Video.stamp_to_datetime(S1))
    _, superseded = tree(video, S0)
    _, current = tree(video, S1)
    errored_video = finished_video(state=UploadState.ERROR, stamp=S1)
    _, failed_old = tree(errored_video, S0, state=RunnerJobState.ERRORED)
    _, recent = tree(errored_video, S0 - 1, updated=timezone.now() - timedelta(days=2))
    gone = Video.objects.create(title="deleted later")
    _, orphan = tree(gone, S0, state=RunnerJobState.CANCELLED)
    gone.delete()

    before = list(RunnerJob.objects.order_by("pk").values())
    summary, code = run("prune_runner_jobs", "--dry-run", "--batch-size", "1")
    assert code == 0
    assert summary["counts"]["jobs_deleted"] == 6
    assert list(RunnerJob.objects.order_by("pk").values()) == before

    summary, code = run("prune_runner_jobs", "--batch-size", "2")
    assert code == 0
    assert summary["counts"]["jobs_deleted"] == 6
    left = set(RunnerJob.objects.values_list("pk", flat=True))
    assert left == {j.pk for j in current + recent}
    assert not left & {j.pk for j in superseded + failed_old + orphan}

    summary, code = run("prune_runner_jobs")
    assert (summary["counts"], code) == ({}, 0)
