"""backfill_urls against a writer of the same row between its read and its write (issue 15).

The writer is a migration switching the video to SCALEWAY with its new urls, committed while
the backfill computes that batch: the backfill must not put back urls of the old location.
"""

import pytest

from marsha_runner.videos import backfill
from marsha_runner.videos.constants import StorageLocation, TranscodePipeline, UploadState
from marsha_runner.videos.media_urls import video_urls_build
from marsha_runner.videos.models import Video

STAMP = 1_600_000_000
pytestmark = pytest.mark.django_db(transaction=True)


def legacy(title: str) -> Video:
    return Video.objects.create(
        title=title,
        upload_state=UploadState.READY,
        uploaded_on=Video.stamp_to_datetime(STAMP),
        transcode_pipeline=TranscodePipeline.AWS,
        storage_location=StorageLocation.AWS,
        resolutions=[240, 480],
        urls={"manifests": {"hls": "/old/master.m3u8"}},  # stale: the backfill rewrites it
    )


def test_a_row_written_meanwhile_is_not_overwritten(videos_root, legacy_root, monkeypatch):
    raced, other = legacy("raced"), legacy("other")
    build = backfill.video_urls_build
    switched = {}

    def build_while_a_migration_switches(*, video, **kwargs):
        urls = build(video=video, **kwargs)  # from the row as read: AWS
        if video.pk == raced.pk and not switched:
            fresh = Video.objects.get(pk=raced.pk)
            fresh.storage_location = StorageLocation.SCALEWAY
            switched["urls"] = video_urls_build(video=fresh)
            Video.objects.filter(pk=raced.pk).update(
                storage_location=StorageLocation.SCALEWAY, urls=switched["urls"]
            )  # committed: the test runs in autocommit
        return urls

    monkeypatch.setattr(backfill, "video_urls_build", build_while_a_migration_switches)
    summary = backfill.videos_backfill_urls(videos=Video.objects.all())

    raced.refresh_from_db()
    assert raced.storage_location == StorageLocation.SCALEWAY
    assert raced.urls == switched["urls"]  # the migration's urls, not the AWS ones
    assert summary == {"videos": 2, "changed": 1, "raced": 1, "dry_run": False}
    other.refresh_from_db()
    assert other.urls == build(video=other)  # the rest of the batch is written
