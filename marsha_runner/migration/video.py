"""Migrate one legacy video: copy every object, prove each copy, then switch the video.

Order, each step safe to kill:

1. take the video's lease (``lease``); a dead holder's lease is taken over;
2. abort the multipart uploads under the video's destination prefix that no progress row
   records (left by runs killed before they recorded them: billed until aborted);
3. list every object under ``<video>/`` in the legacy bucket into the progress table, keeping
   what earlier runs verified;
4. copy each pending object to ``aws/<key>`` in the video storage (``copier``), several at
   once on the process's shared pools, verified ones written in batches;
5. in one transaction, when every listed object is verified: ``storage_location=SCALEWAY`` and
   the URLs recomputed by the videos app;
6. only with ``delete_source``, and only for verified objects of a switched video: delete the
   sources.
"""

import logging
import queue
import time
from dataclasses import asdict, dataclass

from django.conf import settings
from django.db import transaction

from marsha_runner.storage import legacy_storage, video_storage
from marsha_runner.videos.constants import StorageLocation, TranscodePipeline
from marsha_runner.videos.media_urls import video_urls_build
from marsha_runner.videos.models import Video

from . import journal
from .copier import Copier, CopyStopped
from .lease import (
    lease_owner,
    lease_renew_every,
    migration_lock_acquire,
    migration_lock_release,
    migration_lock_renew,
)
from .models import MigrationObject, MigrationVideo
from .pools import CopyPools, Progress
from .stores import Store, store_for

logger = logging.getLogger(__name__)

FLUSH_EVERY = 0.5  # seconds between two writes of verified objects to the database
LEASE_LOST = "lease lost: another run took the video over, this one stopped copying it"


@dataclass
class VideoMigration:
    """What happened to one video; ``status`` is migrated, skipped, failed, stopped or
    dry-run."""

    video_id: str
    status: str
    reason: str = ""
    objects: int = 0
    objects_copied: int = 0
    objects_skipped: int = 0
    bytes: int = 0
    bytes_copied: int = 0
    parts_sent: int = 0
    parts_resumed: int = 0
    uploads_aborted: int = 0
    sources_deleted: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def failure_reason(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"[:500]


def _is_legacy_in_aws(video: Video) -> bool:
    return (
        video.transcode_pipeline == TranscodePipeline.AWS
        and video.storage_location == StorageLocation.AWS
    )


def video_migrate_to_scaleway(
    *,
    video: Video,
    pools: CopyPools | None = None,
    delete_source: bool = False,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> VideoMigration:
    """Migrate one legacy video (see the module docstring). Never raises for a copy failure:
    the result says ``failed`` with a reason, and the video stays in AWS. ``pools``: the
    process's copy pools and memory budget (a run shares them between its videos)."""
    progress = progress or Progress()
    video_id = str(video.pk)
    if not _is_legacy_in_aws(video):
        return VideoMigration(video_id, "skipped", reason="not a legacy video in AWS")
    source, destination = store_for(legacy_storage()), store_for(video_storage())
    if dry_run:
        return _dry_run(video, source)
    if pools is None:
        with CopyPools() as own:
            return video_migrate_to_scaleway(
                video=video, pools=own, delete_source=delete_source, progress=progress
            )

    owner = lease_owner()
    if not migration_lock_acquire(video_id=video.pk, owner=owner):
        return VideoMigration(video_id, "skipped", reason="another run is migrating it")
    try:
        video.refresh_from_db()
        if not _is_legacy_in_aws(video):
            return VideoMigration(video_id, "skipped", reason="already migrated")
        journal.video_progress_start(video, worker=owner)
        result = _migrate_locked(video, source, destination, pools, delete_source, progress, owner)
    except Exception as err:  # noqa: BLE001  (a video's failure never stops the others)
        logger.exception("Migration of video %s failed.", video_id)
        result = VideoMigration(video_id, "failed", reason=failure_reason(err))
    finally:
        migration_lock_release(video_id=video.pk, owner=owner)
    journal.video_progress_end(
        video.pk,
        state={
            "migrated": MigrationVideo.State.MIGRATED,
            "stopped": MigrationVideo.State.STOPPED,
        }.get(result.status, MigrationVideo.State.FAILED),
        reason=result.reason,
    )
    progress.done(result)
    return result


def _dry_run(video: Video, source: Store) -> VideoMigration:
    listed = list(source.list(video.legacy_prefix()))
    verified = set(
        MigrationObject.objects.filter(
            video=video, state=MigrationObject.State.VERIFIED
        ).values_list("key", flat=True)
    )
    todo = [info for info in listed if info.key not in verified]
    return VideoMigration(
        str(video.pk),
        "dry-run",
        objects=len(listed),
        objects_skipped=len(listed) - len(todo),
        bytes=sum(info.size for info in listed),
        bytes_copied=sum(info.size for info in todo),
        objects_copied=len(todo),
    )


def uploads_orphaned_abort(*, video: Video, destination: Store) -> int:
    """Abort the multipart uploads under the video's destination prefix that no progress row
    records (a recorded one is continued by the copy). Call it under the video's lease."""
    recorded = journal.recorded_uploads(video)
    aborted = 0
    for upload in destination.multipart_uploads(Video.migrated_key(video.legacy_prefix())):
        if upload.id not in recorded:
            destination.multipart_abort(upload)
            aborted += 1
    if aborted:
        logger.info("Video %s: %s orphaned multipart upload(s) aborted.", video.pk, aborted)
    return aborted


def _migrate_locked(video, source, destination, pools, delete_source, progress, owner):
    video_id = str(video.pk)
    result = VideoMigration(video_id, "migrated")
    result.uploads_aborted = uploads_orphaned_abort(video=video, destination=destination)
    prefix = video.legacy_prefix()
    listed = list(source.list(prefix))
    if not listed:
        result.status, result.reason = "failed", f"no object under {prefix} in AWS"
        return result
    rows = journal.listing_record(video, listed)
    journal.video_progress_listed(video, rows)
    result.objects, result.bytes = len(rows), sum(r.size for r in rows)
    pending = [row for row in rows if row.state != MigrationObject.State.VERIFIED]
    result.objects_skipped = len(rows) - len(pending)
    progress.video(video_id, len(rows), result.bytes)
    progress.bytes(sum(r.size for r in rows if r.state == MigrationObject.State.VERIFIED))

    existing = {i.key: i for i in destination.list(Video.migrated_key(prefix))} if pending else {}
    lease = _Lease(video.pk, owner)
    copier = Copier(
        source, destination, settings.MIGRATION_PART_SIZE, settings.MIGRATION_SERVER_COPY_MAX,
        pools.parts_pool, pools.budget, pools.throttle, journal.DatabasePartJournal(),
        progress.bytes,
        lambda: pools.stop_reason() or lease.lost, existing,
    )  # fmt: skip
    by_key = {info.key: info for info in listed}
    failures, stopped = _copy_objects(pending, by_key, copier, pools, lease, result)
    result.parts_sent, result.parts_resumed = copier.parts_sent, copier.parts_resumed
    if lease.lost:
        result.status, result.reason = "failed", LEASE_LOST
        return result
    if failures:
        result.status = "failed"
        result.reason = f"{len(failures)} object(s) not copied: {failures[0]}"
        return result
    if stopped:
        result.status, result.reason = "stopped", stopped
        return result
    if not pools.in_switch_thread(_switch, video):
        result.status, result.reason = "failed", "objects left unverified; not switched"
        return result
    logger.info("Video %s migrated to Scaleway (%s objects).", video_id, result.objects)
    if delete_source:
        result.sources_deleted = _delete_sources(video, source)
    return result


class _Lease:
    """Renews the video's lease at its pace; ``lost`` says why copying must stop."""

    def __init__(self, video_id, owner: str):
        self.video_id, self.owner = video_id, owner
        self.every = lease_renew_every()
        self.renewed = time.monotonic()
        self.lost = ""

    def renew_if_due(self) -> None:
        if self.lost or time.monotonic() - self.renewed < self.every:
            return
        if migration_lock_renew(video_id=self.video_id, owner=self.owner):
            self.renewed = time.monotonic()
        else:
            logger.warning("Video %s: %s.", self.video_id, LEASE_LOST)
            self.lost = LEASE_LOST


def _copy_objects(pending, by_key, copier, pools, lease, result) -> tuple[list[str], str]:
    """Copy ``pending`` rows on the shared objects pool, at most ``2 x concurrency`` of this
    video queued at once; record verified ones in batches. (failures, stop reason)."""
    failures: list[str] = []
    stopped = ""
    done: list[MigrationObject] = []
    flushed = time.monotonic()
    rows = iter(pending)
    running: dict = {}
    # Copies report here as they end: cheaper than wait() over every running copy for each.
    ended: queue.SimpleQueue = queue.SimpleQueue()

    def submit_next():
        row = next(rows, None)
        if row is not None:
            future = pools.submit_object(
                copier.copy, by_key[row.key], row, Video.migrated_key(row.key)
            )
            running[future] = row
            future.add_done_callback(ended.put)

    for _ in range(pools.concurrency * 2):
        submit_next()
    while running:
        for future in _ended_within(ended, FLUSH_EVERY):
            row = running.pop(future)
            try:
                row.checksum, copied = future.result()
            except CopyStopped as err:
                stopped = str(err)
                continue
            except Exception as err:  # noqa: BLE001  (recorded; the video fails)
                failures.append(f"{row.key}: {failure_reason(err)}")
                journal.object_error_record(row, failure_reason(err))
                continue
            done.append(row)
            if copied:
                result.objects_copied += 1
                result.bytes_copied += row.size
            else:
                result.objects_skipped += 1
            if not failures and not stopped:
                submit_next()
        lease.renew_if_due()
        if lease.lost or pools.stop_reason():
            stopped = stopped or lease.lost or pools.stop_reason()
        now = time.monotonic()
        if done and (now - flushed >= FLUSH_EVERY or not running):
            journal.verified_record(result.video_id, done)
            done = []
            flushed = now
    if done:
        journal.verified_record(result.video_id, done)
    return failures, stopped


def _ended_within(ended: queue.SimpleQueue, seconds: float) -> list:
    """What ``ended`` holds, waiting up to ``seconds`` for a first one."""
    try:
        first = ended.get(timeout=seconds)
    except queue.Empty:
        return []
    items = [first]
    while not ended.empty():
        items.append(ended.get_nowait())
    return items


def _switch(video: Video) -> bool:
    """SCALEWAY and the URLs rebuilt, in one transaction, when every object is verified."""
    with transaction.atomic():
        locked = Video.objects.select_for_update().get(pk=video.pk)
        unverified = MigrationObject.objects.filter(video=locked).exclude(
            state=MigrationObject.State.VERIFIED
        )
        if locked.storage_location != StorageLocation.AWS or unverified.exists():
            return False
        locked.storage_location = StorageLocation.SCALEWAY
        locked.urls = video_urls_build(video=locked)
        locked.save(update_fields=["storage_location", "urls", "updated_on"])
    return True


def _delete_sources(video: Video, source: Store) -> int:
    """Delete the sources of verified objects of a switched video, and only those."""
    rows = MigrationObject.objects.filter(
        video=video, state=MigrationObject.State.VERIFIED, source_deleted=False
    )
    deleted = []
    for row in rows.iterator():
        source.delete(row.key)
        deleted.append(row.pk)
    MigrationObject.objects.filter(pk__in=deleted).update(source_deleted=True)
    return len(deleted)
