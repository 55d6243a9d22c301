"""The migration's progress rows as a rerun finds them: a listing keeps what was verified,
makes a changed source object pending again and adds new ones (on PostgreSQL one set-based
upsert, elsewhere the ORM: both are run here)."""

import pytest
from django.utils import timezone

from marsha_runner.migration import journal
from marsha_runner.migration.models import MigrationObject
from marsha_runner.migration.stores import ObjectInfo
from marsha_runner.videos.constants import StorageLocation, TranscodePipeline, UploadState
from marsha_runner.videos.models import Video

ETAG = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def video(db):
    return Video.objects.create(
        title="legacy",
        upload_state=UploadState.READY,
        uploaded_on=Video.stamp_to_datetime(1_600_000_000),
        transcode_pipeline=TranscodePipeline.AWS,
        storage_location=StorageLocation.AWS,
        resolutions=[240],
    )


WRITERS = [
    pytest.param(journal._listing_upsert, marks=pytest.mark.postgres, id="postgresql"),
    pytest.param(journal._listing_save, id="orm"),
]


@pytest.mark.parametrize("write", WRITERS)
def test_a_relisting_keeps_the_verified_and_resets_the_changed(video, write):
    def record(listed):
        write(video, listed)
        return list(MigrationObject.objects.filter(video=video).order_by("key"))

    first = [
        ObjectInfo("v/kept", 10, ETAG),
        ObjectInfo("v/changed", 20, ETAG),
        ObjectInfo("v/odd 'key' é", 30, ""),
    ]
    rows = record(first)

    assert [(r.key, r.size, r.source_etag, r.state) for r in rows] == [
        ("v/changed", 20, ETAG, "pending"),
        ("v/kept", 10, ETAG, "pending"),
        ("v/odd 'key' é", 30, "", "pending"),
    ]
    assert all(r.checksum == "" and r.upload_id == "" and not r.source_deleted for r in rows)
    for row in rows:
        row.checksum = ETAG
    journal.verified_record(video.pk, rows)
    MigrationObject.objects.filter(key="v/kept").update(upload_id="u1")

    again = record(
        [
            ObjectInfo("v/kept", 10, ETAG),
            ObjectInfo("v/changed", 21, "f" * 32),  # overwritten in the source since
            ObjectInfo("v/new", 40, ETAG),
        ]
    )

    by_key = {r.key: r for r in again}
    assert set(by_key) == {"v/kept", "v/changed", "v/new", "v/odd 'key' é"}  # none removed
    kept, changed, new = by_key["v/kept"], by_key["v/changed"], by_key["v/new"]
    assert (kept.state, kept.checksum, kept.upload_id) == ("verified", ETAG, "u1")
    assert kept.verified_on is not None and kept.verified_on <= timezone.now()
    assert (changed.size, changed.source_etag) == (21, "f" * 32)
    assert (changed.state, changed.checksum, changed.verified_on) == ("pending", "", None)
    assert (new.size, new.source_etag, new.state) == (40, ETAG, "pending")
    assert by_key["v/odd 'key' é"].state == "verified"


@pytest.mark.postgres
def test_the_listing_returns_the_listed_rows_in_key_order(video):
    journal.listing_record(video, [ObjectInfo("v/b", 1, ETAG), ObjectInfo("v/gone", 2, ETAG)])

    rows = journal.listing_record(video, [ObjectInfo("v/b", 1, ETAG), ObjectInfo("v/a", 3, "")])

    assert [(r.key, r.size, r.state) for r in rows] == [
        ("v/a", 3, "pending"),
        ("v/b", 1, "pending"),
    ]
