"""migrate_to_scaleway between two SeaweedFS servers (AWS and Scaleway stand-ins).

Nothing is mocked: real S3 servers with their own credentials, real copies, real kills.
"""

import json
import signal
import time
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from marsha_runner.migration import lease
from marsha_runner.migration.models import MigrationLock, MigrationObject
from marsha_runner.migration.stores import S3Store
from marsha_runner.migration.tasks import migrate_videos_to_scaleway
from marsha_runner.videos.constants import StorageLocation, TranscodePipeline
from marsha_runner.videos.models import Video

from .conftest import WeedServer, manage
from .legacy import STAMP, assert_identical, legacy_video, run_json

pytestmark = [pytest.mark.s3, pytest.mark.django_db(transaction=True)]


def test_a_realistic_legacy_video_migrates(buckets, settings):
    """>1,000 objects (listing is paginated) and one 50 MB object (multipart, bounded)."""
    settings.MIGRATION_PART_SIZE = 8 * 1024 * 1024
    video = legacy_video(buckets, segments=1001, big=True)
    other = legacy_video(buckets, segments=3)
    source_before = buckets.source_keys()

    summary, code = run_json("--concurrency", "8")

    assert code == 0, summary
    assert summary["migrated"] == 2 and summary["failed"] == 0
    total = len(source_before)
    assert summary["objects"] == summary["objects_copied"] == total
    for item in (video, other):
        item.refresh_from_db()
        assert item.storage_location == StorageLocation.SCALEWAY
        assert_identical(buckets, item)
        hls = item.urls["manifests"]["hls"]
        assert hls.startswith(
            f"{buckets.destination.endpoint}/{buckets.destination_bucket}/aws/{item.id}/cmaf/"
        )
        assert "X-Amz-" not in hls
        for url in [*item.urls["mp4"].values(), *item.urls["thumbnails"].values()]:
            assert f"/{buckets.destination_bucket}/aws/{item.id}/" in url
    big = buckets.destination_keys(f"aws/{video.id}/mp4/{STAMP}_1080.mp4")
    assert big[f"aws/{video.id}/mp4/{STAMP}_1080.mp4"]["ETag"].strip('"').endswith("-7")
    assert buckets.source_keys() == source_before  # the source is untouched
    assert MigrationObject.objects.filter(video=video).count() == len(
        buckets.source_keys(video.legacy_prefix())
    )
    assert not MigrationLock.objects.exists()

    again, code = run_json()
    assert code == 0 and again["videos"] == 0  # nothing left in AWS


def test_server_side_copy_within_one_endpoint(settings, weed_pair):
    """Same server, same credentials: the server copies; no byte passes through us."""
    from .conftest import Buckets

    aws, _ = weed_pair
    buckets = Buckets(settings, aws, aws)
    video = legacy_video(buckets, segments=5)

    def no_read(*args, **kwargs):
        raise AssertionError("bytes were read through the migration")

    original_read, original_whole = S3Store.read, S3Store.read_with_metadata
    S3Store.read, S3Store.read_with_metadata = no_read, no_read
    try:
        summary, code = run_json("--video", str(video.id))
    finally:
        S3Store.read, S3Store.read_with_metadata = original_read, original_whole
    assert code == 0, summary
    video.refresh_from_db()
    assert video.storage_location == StorageLocation.SCALEWAY
    assert_identical(buckets, video)


def test_dry_run_writes_nothing(buckets):
    video = legacy_video(buckets, segments=4)
    objects = len(buckets.source_keys(video.legacy_prefix()))

    out = StringIO()
    call_command("migrate_to_scaleway", "--dry-run", stdout=out)

    assert f"{objects} objects" in out.getvalue() and "Nothing written" in out.getvalue()
    summary, code = run_json("--dry-run")
    assert code == 0 and summary["objects_copied"] == objects and summary["dry_run"]
    assert buckets.destination_keys() == {}
    assert not MigrationObject.objects.exists() and not MigrationLock.objects.exists()
    video.refresh_from_db()
    assert video.storage_location == StorageLocation.AWS


def test_delete_source_deletes_only_verified_sources(buckets, monkeypatch):
    good = legacy_video(buckets, segments=3)
    bad = legacy_video(buckets, segments=3)
    bad_key = Video.migrated_key(bad.legacy_preview_key(STAMP))
    write = S3Store.write

    def corrupting_write(self, key, data, metadata):  # one bit flipped, same size
        if key == bad_key:
            data = data[:-1] + bytes([data[-1] ^ 1])
        return write(self, key, data, metadata)

    monkeypatch.setattr(S3Store, "write", corrupting_write)
    summary, code = run_json("--delete-source")

    assert code == 1
    assert summary["migrated"] == 1 and summary["failed"] == 1
    assert "content differs" in summary["failures"][0]["reason"]
    assert buckets.source_keys(good.legacy_prefix()) == {}
    assert len(buckets.source_keys(bad.legacy_prefix())) == 3 + 8  # all kept
    bad.refresh_from_db()
    assert bad.storage_location == StorageLocation.AWS
    assert summary["sources_deleted"] == MigrationObject.objects.filter(video=good).count()

    monkeypatch.setattr(S3Store, "write", write)
    again, code = run_json("--delete-source")
    assert code == 0 and again["migrated"] == 1
    assert again["objects_copied"] == 1  # only the failed object
    assert buckets.source_keys(bad.legacy_prefix()) == {}


def test_a_read_altered_in_transit_fails_the_video(buckets, monkeypatch):
    """The copy is proven by the destination's ETag equal to the source's, not hashed here:
    bytes altered between the two (same size) still fail it, and nothing is switched."""
    video = legacy_video(buckets, segments=2)
    altered_key = video.legacy_preview_key(STAMP)
    read = S3Store.read_with_metadata

    def altering_read(self, key):
        data, metadata = read(self, key)
        if key == altered_key:
            data = bytes([data[0] ^ 1]) + data[1:]
        return data, metadata

    monkeypatch.setattr(S3Store, "read_with_metadata", altering_read)
    summary, code = run_json("--video", str(video.id))

    assert code == 1 and summary["failed"] == 1
    assert "read content differs from the source's ETag" in summary["failures"][0]["reason"]
    video.refresh_from_db()
    assert video.storage_location == StorageLocation.AWS
    row = MigrationObject.objects.get(video=video, key=altered_key)
    assert row.state != MigrationObject.State.VERIFIED


def test_celery_task_runs_the_service(buckets):
    """The admin action's entry point (eager here): same service, same summary."""
    video = legacy_video(buckets, segments=2)

    summary = migrate_videos_to_scaleway.delay([str(video.id)]).get()

    assert summary["migrated"] == 1
    video.refresh_from_db()
    assert video.storage_location == StorageLocation.SCALEWAY


def test_command_refuses_bad_options():
    with pytest.raises(CommandError, match=r"^--concurrency must be at least 1\.$"):
        call_command("migrate_to_scaleway", "--concurrency", "0")
    with pytest.raises(CommandError, match="argument --video: invalid UUID value: 'nope'"):
        call_command("migrate_to_scaleway", "--video", "nope")


def test_unknown_and_non_legacy_videos_are_reported(buckets):
    peertube = Video.objects.create(title="p", transcode_pipeline=TranscodePipeline.PEERTUBE)
    summary, code = run_json(
        "--video", str(peertube.id), "--video", "00000000-0000-0000-0000-000000000000"
    )
    assert code == 1
    assert summary["skipped"] == 1 and summary["failed"] == 1
    assert summary["failures"][0]["reason"] == "no such video"


# --- Locks -------------------------------------------------------------------------------------


def test_lock_is_exclusive_and_a_dead_holder_is_taken_over(db):
    video = Video.objects.create(title="locked")
    assert lease.migration_lock_acquire(video_id=video.id, owner="a")
    assert not lease.migration_lock_acquire(video_id=video.id, owner="b")
    MigrationLock.objects.filter(video=video).update(pid=2**22 + 12345)  # no such process
    assert lease.migration_lock_acquire(video_id=video.id, owner="b")
    lease.migration_lock_release(video_id=video.id, owner="a")  # not a's any more
    assert MigrationLock.objects.get(video=video).owner == "b"


# --- Runs in subprocesses: kills, a destination going away, two runs at once -----------------


def verified_count(video) -> int:
    return MigrationObject.objects.filter(
        video=video, state=MigrationObject.State.VERIFIED
    ).count()


def check_invariants(buckets, video):
    """Never switched before every object verifies; every verified object is really there."""
    video.refresh_from_db()
    rows = list(MigrationObject.objects.filter(video=video))
    copies = buckets.destination_keys(Video.migrated_key(video.legacy_prefix()))
    source = buckets.source_keys(video.legacy_prefix())
    if video.storage_location == StorageLocation.SCALEWAY:
        assert len(rows) == len(source)
        assert all(r.state == MigrationObject.State.VERIFIED for r in rows)
    for row in rows:
        if row.state == MigrationObject.State.VERIFIED:
            copy = copies[Video.migrated_key(row.key)]
            assert copy["Size"] == source[row.key]["Size"]
            assert copy["ETag"] == source[row.key]["ETag"]


def test_killed_at_several_points_then_rerun_completes(buckets, settings):
    video = legacy_video(buckets, segments=600)
    total = len(buckets.source_keys(video.legacy_prefix()))
    env = buckets.env()
    kills = []
    for threshold in (0, total // 4, total // 2, (3 * total) // 4):
        # Paced (about 160 KB in all at 20 KB/s): unpaced, a run copies more objects between two
        # flushes of its progress (0.5 s) than a quarter of the video, and the last kill landed
        # once every object was verified.
        proc = manage(
            env, "migrate_to_scaleway", "--json", "--concurrency", "1", "--bwlimit", "20000"
        )
        deadline = time.monotonic() + 120
        while verified_count(video) <= threshold and proc.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        if proc.poll() is not None:
            break
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        kills.append(verified_count(video))
        check_invariants(buckets, video)

    assert len(kills) >= 3, f"the run ended before the kills: {kills}"
    assert kills == sorted(kills) and kills[-1] < total
    video.refresh_from_db()
    assert video.storage_location == StorageLocation.AWS
    verified_before = {
        row.key: row.verified_on
        for row in MigrationObject.objects.filter(
            video=video, state=MigrationObject.State.VERIFIED
        )
    }
    copied_before = buckets.destination_keys()

    proc = manage(env, "migrate_to_scaleway", "--json")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()[-2000:]
    summary = json.loads(out)
    assert summary["migrated"] == 1
    # Nothing verified is copied again: only the rest, and verified copies are untouched.
    assert summary["objects_copied"] <= total - len(verified_before)
    after = buckets.destination_keys()
    for key in verified_before:
        dest = Video.migrated_key(key)
        assert after[dest]["LastModified"] == copied_before[dest]["LastModified"]
    check_invariants(buckets, video)
    video.refresh_from_db()
    assert video.storage_location == StorageLocation.SCALEWAY
    assert_identical(buckets, video)


def test_destination_stops_mid_run(settings, weed_pair):
    from .conftest import Buckets

    aws, _ = weed_pair
    scaleway = WeedServer("scw-down").start()
    try:
        buckets = Buckets(settings, aws, scaleway)
        videos = [legacy_video(buckets, segments=150) for _ in range(3)]
        # One video at a time, each about 6 s at 10 kB/s (about 57 kB): the stop lands
        # while videos are left to copy, however late this process sees the first switch
        # (unpaced, the other two could finish first on a loaded machine: exit 0).
        proc = manage(
            buckets.env(), "migrate_to_scaleway", "--json", "--concurrency", "2",
            "--videos-at-once", "1", "--bwlimit", "10000",
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while not Video.objects.filter(storage_location=StorageLocation.SCALEWAY).exists():
            assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
            assert time.monotonic() < deadline
            time.sleep(0.01)
        scaleway.stop()
        out, err = proc.communicate(timeout=300)

        assert proc.returncode == 1, err.decode()[-2000:]
        summary = json.loads(out)
        assert summary["migrated"] >= 1 and summary["failed"] >= 1
        assert summary["migrated"] + summary["failed"] == 3
        assert all(f["reason"] for f in summary["failures"])
        switched = Video.objects.filter(storage_location=StorageLocation.SCALEWAY).count()
        assert switched == summary["migrated"]

        scaleway.start()
        for video in videos:
            check_invariants(buckets, video)
        proc = manage(buckets.env(), "migrate_to_scaleway", "--json")
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()[-2000:]
        assert json.loads(out)["migrated"] == summary["failed"]
        for video in videos:
            video.refresh_from_db()
            assert video.storage_location == StorageLocation.SCALEWAY
            assert_identical(buckets, video)
    finally:
        scaleway.cleanup()


def test_two_runs_at_once_migrate_each_video_once(buckets):
    videos = [legacy_video(buckets, segments=60) for _ in range(4)]
    total = sum(len(buckets.source_keys(v.legacy_prefix())) for v in videos)
    env = buckets.env()

    procs = [manage(env, "migrate_to_scaleway", "--json", "--concurrency", "2") for _ in "ab"]
    summaries = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()[-2000:]
        summaries.append(json.loads(out))

    migrated = [
        r["video_id"] for s in summaries for r in s["results"] if r["status"] == "migrated"
    ]
    assert sorted(migrated) == sorted(str(v.id) for v in videos)  # each exactly once
    assert sum(s["objects_copied"] for s in summaries) == total
    for video in videos:
        video.refresh_from_db()
        assert video.storage_location == StorageLocation.SCALEWAY
