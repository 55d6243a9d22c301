"""Part-level resume, orphaned uploads, --max-seconds, the lease, UploadPartCopy, metadata.

Real SeaweedFS servers, real kills: nothing mocked but the clock of nothing.
"""

import hashlib
import json
import signal
import time

import pytest
from django.db import connection

from marsha_runner.migration import video as video_migration
from marsha_runner.migration.copier import Copier
from marsha_runner.migration.models import MigrationLock, MigrationObject, MigrationPart
from marsha_runner.migration.pools import Progress
from marsha_runner.migration.stores import S3Store, store_for
from marsha_runner.storage import legacy_storage, video_storage
from marsha_runner.videos.constants import StorageLocation
from marsha_runner.videos.models import Video

from .conftest import Buckets, manage
from .legacy import METADATA, STAMP, assert_identical, legacy_video, run_json

pytestmark = [pytest.mark.s3, pytest.mark.django_db(transaction=True)]
MB = 1024 * 1024


def big_object(
    buckets, video, size: int, name: str = "1080", *, parts: int = 0
) -> tuple[str, bytes]:
    """A large source object: one PUT (its ETag the MD5 of the whole: the copy reads it in
    order to prove it), or ``parts`` multipart parts (a composite ETag: parts streamed)."""
    key = f"{video.legacy_prefix()}mp4/{STAMP}_{name}.mp4"
    data = (hashlib.sha256(name.encode()).digest() * (size // 32 + 1))[:size]
    if not parts:
        buckets.put(key, data, **METADATA)
        return key, data
    client, bucket = buckets.source_client, buckets.source_bucket
    upload = client.create_multipart_upload(Bucket=bucket, Key=key, **METADATA)["UploadId"]
    step = -(-size // parts)
    etags = [
        client.upload_part(
            Bucket=bucket, Key=key, UploadId=upload, PartNumber=n, Body=data[start : start + step]
        )["ETag"]
        for n, start in enumerate(range(0, size, step), 1)
    ]
    client.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload,
        MultipartUpload={"Parts": [{"ETag": e, "PartNumber": n} for n, e in enumerate(etags, 1)]},
    )  # fmt: skip
    assert "-" in client.head_object(Bucket=bucket, Key=key)["ETag"]
    return key, data


def streamed_parts_counted(monkeypatch) -> list:
    """The parts the copier streamed from a ranged GET (the composite-ETag path)."""
    streamed = []
    stream_part = Copier._stream_part

    def counting(self, info, upload, number, *args):
        streamed.append(number)
        return stream_part(self, info, upload, number, *args)

    monkeypatch.setattr(Copier, "_stream_part", counting)
    return streamed


def open_uploads(buckets, prefix: str) -> list[dict]:
    answer = buckets.destination_client.list_multipart_uploads(
        Bucket=buckets.destination_bucket, Prefix=prefix
    )
    return answer.get("Uploads", [])


def wait_for(condition, *, proc=None, seconds=120.0, what="the condition"):
    deadline = time.monotonic() + seconds
    while not condition():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the run ended first: {proc.communicate()[1].decode()[-2000:]}")
        assert time.monotonic() < deadline, f"{what} within {seconds} s"
        time.sleep(0.02)


@pytest.mark.parametrize("source_parts", [0, 7], ids=["single-put", "multipart"])
def test_a_50_mb_object_killed_mid_copy_resumes_without_resending_a_verified_part(
    buckets, source_parts
):
    """Killed (SIGKILL) after some parts are verified; the rerun continues the same upload
    and sends only the parts it lacks: a single-PUT source's verified parts are read only to
    hash them (its MD5 proves the read), a multipart source's parts are streamed from their
    own ranged GETs and the verified ones not read at all."""
    video = legacy_video(buckets, segments=2)
    key, data = big_object(buckets, video, 50 * MB, parts=source_parts)
    env = {
        **buckets.env(),
        "MIGRATION_PART_SIZE": str(5 * MB),
        "MIGRATION_MEMORY": str(5 * MB),  # one part in flight: the kill lands between parts
    }
    slow = manage({**env, "MIGRATION_BANDWIDTH": str(8 * MB)}, "migrate_to_scaleway", "--json")
    row = None

    def parts_verified():
        nonlocal row
        row = row or MigrationObject.objects.filter(video=video, key=key).first()
        return row is not None and MigrationPart.objects.filter(object=row).count() >= 3

    try:
        wait_for(parts_verified, proc=slow, what="three verified parts")
    finally:
        slow.send_signal(signal.SIGKILL)
        slow.wait(timeout=10)
    row.refresh_from_db()
    verified = {p.number: p.etag for p in MigrationPart.objects.filter(object=row)}
    assert row.upload_id and row.state == MigrationObject.State.PENDING
    destination_key = Video.migrated_key(key)
    held = buckets.destination_client.list_parts(
        Bucket=buckets.destination_bucket, Key=destination_key, UploadId=row.upload_id
    )["Parts"]
    held = {p["PartNumber"]: p["ETag"].strip('"') for p in held}
    assert {number: held[number] for number in verified} == verified
    assert len(verified) < 10

    rerun = manage(env, "migrate_to_scaleway", "--json")
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err.decode()[-2000:]
    summary = json.loads(out)
    assert summary["migrated"] == 1
    assert summary["parts_resumed"] == len(verified)
    assert summary["parts_sent"] == 10 - len(verified)  # no verified part sent again
    assert summary["uploads_aborted"] == 0  # the recorded upload was continued, not aborted
    copy = buckets.destination_client.get_object(
        Bucket=buckets.destination_bucket, Key=destination_key
    )
    assert copy["Body"].read() == data
    assert copy["ETag"].strip('"').endswith("-10")
    assert_identical(buckets, video)
    assert open_uploads(buckets, "aws/") == []
    row.refresh_from_db()
    assert row.upload_id == "" and not MigrationPart.objects.exists()


def test_orphaned_uploads_under_the_destination_prefix_are_aborted(buckets):
    """Uploads left by killed runs (never recorded) are aborted; another video's are not."""
    video = legacy_video(buckets, segments=2)
    other = legacy_video(buckets, segments=1)
    client, bucket = buckets.destination_client, buckets.destination_bucket
    orphans = []
    for name in ("mp4/orphan.mp4", "cmaf/orphan.cmfv"):
        key = Video.migrated_key(f"{video.legacy_prefix()}{name}")
        upload = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
        client.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=1, Body=b"x" * 99)
        orphans.append(upload)
    other_key = Video.migrated_key(f"{other.legacy_prefix()}mp4/theirs.mp4")
    theirs = client.create_multipart_upload(Bucket=bucket, Key=other_key)["UploadId"]
    assert len(open_uploads(buckets, Video.migrated_key(video.legacy_prefix()))) == 2

    summary, code = run_json("--video", str(video.id))

    assert code == 0, summary
    assert summary["uploads_aborted"] == 2
    assert open_uploads(buckets, Video.migrated_key(video.legacy_prefix())) == []
    assert [u["UploadId"] for u in open_uploads(buckets, "aws/")] == [theirs]
    video.refresh_from_db()
    assert video.storage_location == StorageLocation.SCALEWAY


def test_max_seconds_stops_cleanly_and_small_videos_do_not_wait_for_a_large_one(buckets, settings):
    """A budget shorter than the large object: the small videos (in flight beside it) are
    migrated, the large one stops with its upload recorded and its lease released, exit 0;
    the next run continues that upload."""
    large = legacy_video(buckets, segments=1)
    big_object(buckets, large, 30 * MB)
    small = [legacy_video(buckets, segments=3) for _ in range(3)]
    env = {
        **buckets.env(),
        "MIGRATION_PART_SIZE": str(5 * MB),
        "MIGRATION_MEMORY": str(5 * MB),
        "MIGRATION_BANDWIDTH": str(3 * MB),
    }
    started = time.monotonic()
    proc = manage(env, "migrate_to_scaleway", "--json", "--max-seconds", "6")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()[-2000:]
    summary = json.loads(out)
    assert time.monotonic() - started < 120
    statuses = {r["video_id"]: r["status"] for r in summary["results"]}
    assert statuses[str(large.id)] == "stopped"
    assert all(statuses[str(v.id)] == "migrated" for v in small), statuses
    large.refresh_from_db()
    assert large.storage_location == StorageLocation.AWS
    assert not MigrationLock.objects.exists()
    recorded = MigrationObject.objects.exclude(upload_id="").get(video=large)
    assert MigrationPart.objects.filter(object=recorded).exists()

    settings.MIGRATION_PART_SIZE = 5 * MB  # as the stopped run: its parts line up
    again, code = run_json("--video", str(large.id))
    assert code == 0 and again["migrated"] == 1, again
    assert again["parts_resumed"] >= 1
    assert_identical(buckets, large)


def test_a_lost_lease_stops_the_copy(buckets, settings):
    """Another run takes the lease over mid-copy: the renewal answers False and this run
    stops copying; the video is not switched by it."""
    settings.MIGRATION_LOCK_RENEW_EVERY = 0  # renew at every turn of the copy loop
    settings.MIGRATION_CONCURRENCY = 1
    video = legacy_video(buckets, segments=200)
    total = len(buckets.source_keys(video.legacy_prefix()))
    stolen = []

    def steal(count):  # called from a copy thread: its own connection, closed here
        if not stolen:
            stolen.append(MigrationLock.objects.filter(video=video).update(owner="thief"))
            connection.close()

    result = video_migration.video_migrate_to_scaleway(
        video=video, progress=Progress(on_bytes=steal)
    )

    assert stolen == [1]
    assert result.status == "failed" and result.reason == video_migration.LEASE_LOST
    assert result.objects_copied < total // 2
    video.refresh_from_db()
    assert video.storage_location == StorageLocation.AWS
    assert MigrationLock.objects.get(video=video).owner == "thief"  # not released by us


def test_above_the_server_copy_limit_the_server_copies_by_parts(settings, weed_pair):
    """One endpoint, one set of credentials, an object above MIGRATION_SERVER_COPY_MAX:
    UploadPartCopy (no byte passes through us for the copy), metadata kept. The proof then
    reads both sides' MD5: part copies' ETags do not compare with a single-part source's."""
    aws, _ = weed_pair
    buckets = Buckets(settings, aws, aws)
    settings.MIGRATION_SERVER_COPY_MAX = 5 * MB
    settings.MIGRATION_PART_SIZE = 5 * MB
    video = legacy_video(buckets, segments=2)
    key, data = big_object(buckets, video, 12 * MB)
    copied = []
    part_copy = S3Store.multipart_part_copy

    def no_read(*args, **kwargs):
        raise AssertionError("bytes were read through the migration")

    def counting(self, *args, **kwargs):
        copied.append(args[1])
        return part_copy(self, *args, **kwargs)

    originals = (S3Store.read_with_metadata, S3Store.open_range)
    S3Store.read_with_metadata = S3Store.open_range = no_read
    S3Store.multipart_part_copy = counting
    try:
        summary, code = run_json("--video", str(video.id))
    finally:
        S3Store.read_with_metadata, S3Store.open_range = originals
        S3Store.multipart_part_copy = part_copy
    assert code == 0, summary
    assert sorted(copied) == [1, 2, 3]
    assert_identical(buckets, video)


@pytest.mark.parametrize("plain_http", [True, False], ids=["plain-http", "boto3-only"])
@pytest.mark.parametrize("source_parts", [0, 2], ids=["single-put", "multipart"])
def test_every_metadata_field_is_kept_whole_multipart_and_server_side(
    buckets, settings, monkeypatch, source_parts, plain_http
):
    """Content-Type, Cache-Control, Content-Disposition, Content-Encoding, Content-Language,
    Expires and user metadata, on a small object, a multipart one (read in order, or
    streamed part by part when the source is multipart) and a server-side copy; with object
    GET, PUT and listing as plain HTTP (the default) or through boto3."""
    settings.MIGRATION_PART_SIZE = 5 * MB
    settings.MIGRATION_PLAIN_HTTP = plain_http
    for storage in (legacy_storage(), video_storage()):
        assert (store_for(storage).http is not None) == plain_http
    streamed = streamed_parts_counted(monkeypatch)
    video = legacy_video(buckets, segments=1)
    big_object(buckets, video, 11 * MB, parts=source_parts)
    summary, code = run_json("--video", str(video.id))
    assert code == 0, summary
    assert sorted(streamed) == ([1, 2, 3] if source_parts else [])
    assert summary["parts_sent"] == 3
    assert_identical(buckets, video)  # every field of METADATA_FIELDS, Expires included
    copy = buckets.destination_client.head_object(
        Bucket=buckets.destination_bucket,
        Key=Video.migrated_key(video.legacy_mp4_key(STAMP, 240)),
    )
    assert {name: copy.get(name) for name in METADATA} == METADATA
