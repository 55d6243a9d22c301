"""AWS → Scaleway: copy every legacy object of a video, prove each copy, then switch the video.

Called alike by ``manage.py migrate_to_scaleway``, the Celery task (the admin action) and the
tests. Order of a video's migration, each step safe to kill:

1. take the video's lock (a lease in the database; a dead holder's lease is taken over);
2. list every object under ``<video>/`` in the legacy bucket (paginated) into the progress
   table, keeping what earlier runs verified;
3. copy each pending object to ``aws/<key>`` in the video storage: a server-side copy within
   one endpoint and credentials, else ranged reads into a multipart upload (memory bounded by
   the part size, whatever the object size); content type, cache control, disposition and
   user metadata kept;
4. verify each copy by content: sizes equal, and an MD5 both sides agree on (the ETag when it
   is comparable, else computed by reading), metadata equal; record it as verified;
5. in one transaction, when every listed object is verified: ``storage_location=SCALEWAY`` and
   the URLs recomputed by the videos app's URL service;
6. only with ``delete_source``, and only for verified objects of a switched video: delete the
   sources.
"""

import hashlib
import logging
import os
import socket
import time
import uuid
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from marsha_runner.storage import legacy_storage, video_storage
from marsha_runner.videos.constants import StorageLocation, TranscodePipeline
from marsha_runner.videos.models import Video
from marsha_runner.videos.services import video_urls_build

from .models import MigrationLock, MigrationObject
from .stores import (
    ObjectInfo,
    Store,
    composite_etag,
    plain_md5,
    store_for,
)

logger = logging.getLogger(__name__)

SERVER_COPY_MAX = 5 * 1024**3  # CopyObject's limit; larger objects are streamed
PART_WINDOW = 8  # parts of one object in flight at once (memory: window x part size)
FLUSH_EVERY = 0.5  # seconds between two writes of verified objects to the database


class CopyFailed(Exception):
    """A copy that does not verify: sizes, checksums or metadata differ."""


@dataclass
class VideoMigration:
    """What happened to one video; ``status`` is migrated, skipped, failed or dry-run."""

    video_id: str
    status: str
    reason: str = ""
    objects: int = 0
    objects_copied: int = 0
    objects_skipped: int = 0
    bytes: int = 0
    bytes_copied: int = 0
    sources_deleted: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Progress:
    """Callbacks a caller may pass (the command's progress bar); all optional."""

    on_video: object = None  # (video_id, objects, bytes) when a video's copy starts
    on_bytes: object = None  # (count) as bytes are copied or verified
    on_done: object = None  # (VideoMigration)

    def video(self, *args):
        if self.on_video:
            self.on_video(*args)

    def bytes(self, count):
        if self.on_bytes:
            self.on_bytes(count)

    def done(self, result):
        if self.on_done:
            self.on_done(result)


@dataclass
class _Copier:
    """Copies and verifies objects from one store to another, thread-safely."""

    source: Store
    destination: Store
    part_size: int
    parts_pool: ThreadPoolExecutor
    progress: Progress = field(default_factory=Progress)
    existing: dict = field(default_factory=dict)  # destination key → ObjectInfo, listed once

    def copy(self, info: ObjectInfo, destination_key: str) -> tuple[str, bool]:
        """Make ``destination_key`` a verified copy of ``info``; (checksum, copied?)."""
        already = self._verified_existing(info, destination_key)
        if already:
            self.progress.bytes(info.size)
            return already, False
        if self.source.identity == self.destination.identity and info.size <= SERVER_COPY_MAX:
            self.destination.server_copy(self.source, info.key, destination_key)
            checksum = self._verify_server_copy(info, destination_key)
            self.progress.bytes(info.size)
            return checksum, True
        if info.size <= self.part_size:
            return self._copy_whole(info, destination_key), True
        return self._copy_parts(info, destination_key), True

    def _source_metadata(self, info: ObjectInfo) -> dict:
        if info.metadata or not hasattr(self.source, "client"):
            return info.metadata
        head = self.source.head(info.key)
        if head is None:
            raise CopyFailed(f"{info.key}: gone from the source.")
        return head.metadata

    def _verified_existing(self, info: ObjectInfo, destination_key: str) -> str:
        """A copy left by a killed run, provably identical: no need to copy it again."""
        listed = self.existing.get(destination_key)
        if listed is None or listed.size != info.size:
            return ""
        if not plain_md5(info.etag):
            return ""
        head = self.destination.head(destination_key)
        if head is None or head.size != info.size or head.etag != info.etag:
            return ""
        source_metadata = self._source_metadata(info)
        if hasattr(self.destination, "client") and not _same_metadata(
            source_metadata, head.metadata
        ):
            return ""
        return info.etag

    def _copy_whole(self, info: ObjectInfo, destination_key: str) -> str:
        data, metadata = self.source.read_with_metadata(info.key)
        if len(data) != info.size:
            raise CopyFailed(f"{info.key}: read {len(data)} bytes of {info.size}.")
        md5 = hashlib.md5(data).hexdigest()  # noqa: S324  (the S3 ETag algorithm)
        etag = self.destination.write(destination_key, data, metadata)
        self.progress.bytes(info.size)
        del data
        self._verify(info, destination_key, md5=md5, composite=md5, metadata=metadata, etag=etag)
        return md5

    def _copy_parts(self, info: ObjectInfo, destination_key: str) -> str:
        """Ranged reads → multipart upload, PART_WINDOW parts in flight, hashed in order."""
        metadata = self._source_metadata(info)
        upload = self.destination.multipart_begin(destination_key, metadata)
        ranges = [
            (n, start, min(start + self.part_size, info.size) - 1)
            for n, start in enumerate(range(0, info.size, self.part_size), 1)
        ]

        def part(number, start, end):
            data = self.source.read(info.key, start, end)
            if len(data) != end - start + 1:
                raise CopyFailed(f"{info.key}: part {number} is {len(data)} bytes.")
            digest = hashlib.md5(data).digest()  # noqa: S324
            etag = self.destination.multipart_part(upload, number, data, start)
            if etag and etag != digest.hex():
                raise CopyFailed(f"{info.key}: part {number} arrived altered.")
            self.progress.bytes(len(data))
            return data, digest, etag

        whole = hashlib.md5()  # noqa: S324
        digests, etags, futures = [], [], {}
        try:
            submitted = 0
            for index in range(len(ranges)):
                while submitted < len(ranges) and submitted < index + PART_WINDOW:
                    futures[submitted] = self.parts_pool.submit(part, *ranges[submitted])
                    submitted += 1
                data, digest, etag = futures.pop(index).result()
                whole.update(data)
                del data
                digests.append(digest)
                etags.append(etag)
            etag = self.destination.multipart_complete(upload, etags)
        except BaseException:
            for future in futures.values():
                future.cancel()
            self.destination.multipart_abort(upload)
            raise
        md5 = whole.hexdigest()
        composite = composite_etag(digests)
        self._verify(
            info, destination_key, md5=md5, composite=composite, metadata=metadata, etag=etag
        )
        return md5

    def _verify(self, info, destination_key, *, md5, composite, metadata, etag=""):
        """The MD5 of what was read matches the source (when its ETag is one) and the
        destination; sizes equal; metadata kept.

        The destination's side is the ETag its write answered, computed by the server from
        the bytes it stored (a content checksum: equal MD5s mean equal bytes and sizes, and
        the metadata went with that same request). When the write gave none, or not an MD5
        (a filesystem, server-side encryption), the copy is looked up and read back.
        """
        if plain_md5(info.etag) and info.etag != md5:
            raise CopyFailed(f"{info.key}: read content differs from the source's ETag.")
        if etag and etag in (md5, composite):
            return
        head = self.destination.head(destination_key)
        if head is None or head.size != info.size:
            raise CopyFailed(f"{destination_key}: size differs after copy.")
        if head.etag not in (md5, composite) and self.destination.md5(destination_key) != md5:
            raise CopyFailed(f"{destination_key}: content differs after copy.")
        if hasattr(self.destination, "client") and not _same_metadata(metadata, head.metadata):
            raise CopyFailed(f"{destination_key}: metadata differs after copy.")

    def _verify_server_copy(self, info: ObjectInfo, destination_key: str) -> str:
        head = self.destination.head(destination_key)
        if head is None or head.size != info.size:
            raise CopyFailed(f"{destination_key}: size differs after copy.")
        if head.etag == info.etag and (plain_md5(info.etag) or "-" in info.etag):
            checksum = info.etag
        else:  # not comparable: compute both
            checksum = self.source.md5(info.key)
            if self.destination.md5(destination_key) != checksum:
                raise CopyFailed(f"{destination_key}: content differs after copy.")
        source_metadata = self._source_metadata(info)
        if not _same_metadata(source_metadata, head.metadata):
            raise CopyFailed(f"{destination_key}: metadata differs after copy.")
        return checksum


def _same_metadata(expected: dict, actual: dict) -> bool:
    """Every field the source has, the copy has alike (a store may add a default type)."""
    for name, value in expected.items():
        if name == "Metadata":
            if {k.lower(): v for k, v in value.items()} != {
                k.lower(): v for k, v in (actual.get("Metadata") or {}).items()
            }:
                return False
        elif actual.get(name) != value:
            return False
    return True


# --- Lock ------------------------------------------------------------------------------------


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _process_dead(lock: MigrationLock) -> bool:
    if lock.host != socket.gethostname():
        return False
    try:
        os.kill(lock.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def migration_lock_acquire(*, video_id, owner: str) -> bool:
    """Take the video's lease, or take over a dead one; False when a live run holds it."""
    expires = timezone.now() + timedelta(seconds=settings.MIGRATION_LOCK_TTL)
    fields = {"owner": owner, "host": socket.gethostname(), "pid": os.getpid()}
    with transaction.atomic():
        lock, created = MigrationLock.objects.select_for_update().get_or_create(
            video_id=video_id, defaults={**fields, "expires_on": expires}
        )
        if created:
            return True
        if lock.owner != owner and lock.expires_on > timezone.now() and not _process_dead(lock):
            return False
        MigrationLock.objects.filter(video_id=video_id).update(**fields, expires_on=expires)
        return True


def migration_lock_renew(*, video_id, owner: str) -> bool:
    expires = timezone.now() + timedelta(seconds=settings.MIGRATION_LOCK_TTL)
    return bool(
        MigrationLock.objects.filter(video_id=video_id, owner=owner).update(expires_on=expires)
    )


def migration_lock_release(*, video_id, owner: str) -> None:
    MigrationLock.objects.filter(video_id=video_id, owner=owner).delete()


# --- Selectors -------------------------------------------------------------------------------


def videos_to_migrate():
    """Legacy videos still read from the AWS bucket."""
    return Video.objects.filter(
        transcode_pipeline=TranscodePipeline.AWS, storage_location=StorageLocation.AWS
    ).order_by("created_on", "pk")


# --- Service ---------------------------------------------------------------------------------


def _record_listing(video: Video, listed: list[ObjectInfo]) -> list[MigrationObject]:
    """Upsert the progress rows of what is listed; a changed source object is pending again."""
    existing = {row.key: row for row in MigrationObject.objects.filter(video=video)}
    new, changed = [], []
    for info in listed:
        row = existing.get(info.key)
        if row is None:
            new.append(
                MigrationObject(video=video, key=info.key, size=info.size, source_etag=info.etag)
            )
        elif row.size != info.size or row.source_etag != info.etag:
            row.size, row.source_etag = info.size, info.etag
            row.state, row.checksum, row.verified_on = MigrationObject.State.PENDING, "", None
            changed.append(row)
    MigrationObject.objects.bulk_create(new, batch_size=1000, ignore_conflicts=True)
    if changed:
        MigrationObject.objects.bulk_update(
            changed, ["size", "source_etag", "state", "checksum", "verified_on"], batch_size=1000
        )
    keys = {info.key for info in listed}
    return [
        row
        for row in MigrationObject.objects.filter(video=video).order_by("key")
        if row.key in keys
    ]


def video_migrate_to_scaleway(
    *,
    video: Video,
    concurrency: int | None = None,
    delete_source: bool = False,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> VideoMigration:
    """Migrate one legacy video (see the module docstring). Never raises for a copy failure:
    the result says ``failed`` with a reason, and the video stays in AWS."""
    progress = progress or Progress()
    concurrency = max(1, concurrency or settings.MIGRATION_CONCURRENCY)
    video_id = str(video.pk)
    if (
        video.transcode_pipeline != TranscodePipeline.AWS
        or video.storage_location != StorageLocation.AWS
    ):
        return VideoMigration(video_id, "skipped", reason="not a legacy video in AWS")
    source = store_for(legacy_storage(), max_connections=concurrency * 2)
    destination = store_for(video_storage(), max_connections=concurrency * 2)
    prefix = video.legacy_prefix()

    if dry_run:
        listed = list(source.list(prefix))
        verified = set(
            MigrationObject.objects.filter(
                video=video, state=MigrationObject.State.VERIFIED
            ).values_list("key", flat=True)
        )
        todo = [info for info in listed if info.key not in verified]
        return VideoMigration(
            video_id,
            "dry-run",
            objects=len(listed),
            objects_skipped=len(listed) - len(todo),
            bytes=sum(info.size for info in listed),
            bytes_copied=sum(info.size for info in todo),
            objects_copied=len(todo),
        )

    owner = _owner()
    if not migration_lock_acquire(video_id=video.pk, owner=owner):
        return VideoMigration(video_id, "skipped", reason="another run is migrating it")
    try:
        video.refresh_from_db()
        if video.storage_location != StorageLocation.AWS:
            return VideoMigration(video_id, "skipped", reason="already migrated")
        result = _migrate_locked(
            video, source, destination, prefix, concurrency, delete_source, progress, owner
        )
    except Exception as err:  # noqa: BLE001  (a video's failure never stops the others)
        logger.exception("Migration of video %s failed.", video_id)
        result = VideoMigration(video_id, "failed", reason=_reason(err))
    finally:
        migration_lock_release(video_id=video.pk, owner=owner)
    progress.done(result)
    return result


def _reason(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"[:500]


def _migrate_locked(
    video, source, destination, prefix, concurrency, delete_source, progress, owner
) -> VideoMigration:
    video_id = str(video.pk)
    listed = list(source.list(prefix))
    if not listed:
        return VideoMigration(video_id, "failed", reason=f"no object under {prefix} in AWS")
    rows = _record_listing(video, listed)
    by_key = {info.key: info for info in listed}
    result = VideoMigration(
        video_id, "migrated", objects=len(rows), bytes=sum(r.size for r in rows)
    )
    pending = [row for row in rows if row.state != MigrationObject.State.VERIFIED]
    result.objects_skipped = len(rows) - len(pending)
    progress.video(video_id, len(rows), result.bytes)
    progress.bytes(sum(r.size for r in rows if r.state == MigrationObject.State.VERIFIED))

    existing = {i.key: i for i in destination.list(Video.migrated_key(prefix))}
    failures = _copy_objects(
        video, pending, by_key, existing, source, destination, concurrency, progress, owner, result
    )
    if failures:
        result.status = "failed"
        result.reason = f"{len(failures)} object(s) not copied: {failures[0]}"
        return result

    with transaction.atomic():
        locked = Video.objects.select_for_update().get(pk=video.pk)
        unverified = MigrationObject.objects.filter(video=locked).exclude(
            state=MigrationObject.State.VERIFIED
        )
        if locked.storage_location != StorageLocation.AWS or unverified.exists():
            result.status = "failed"
            result.reason = "objects left unverified; not switched"
            return result
        locked.storage_location = StorageLocation.SCALEWAY
        locked.urls = video_urls_build(video=locked)
        locked.save(update_fields=["storage_location", "urls", "updated_on"])
    logger.info("Video %s migrated to Scaleway (%s objects).", video_id, result.objects)

    if delete_source:
        result.sources_deleted = _delete_sources(video, source)
    return result


def _copy_objects(
    video, pending, by_key, existing, source, destination, concurrency, progress, owner, result
) -> list[str]:
    """Copy ``pending`` rows with ``concurrency`` workers; record verified ones in batches."""
    failures: list[str] = []
    if not pending:
        return failures
    done: list[MigrationObject] = []
    lock_renewed = flushed = time.monotonic()
    lock_every = max(1.0, settings.MIGRATION_LOCK_TTL / 4)

    def flush():
        now = timezone.now()
        for row in done:
            row.verified_on = now
        MigrationObject.objects.bulk_update(
            done, ["state", "checksum", "error", "verified_on"], batch_size=1000
        )
        done.clear()

    with (
        ThreadPoolExecutor(concurrency, thread_name_prefix="migrate") as objects_pool,
        ThreadPoolExecutor(concurrency, thread_name_prefix="migrate-part") as parts_pool,
    ):
        copier = _Copier(
            source, destination, settings.MIGRATION_PART_SIZE, parts_pool, progress, existing
        )
        queue = iter(pending)
        running = {}

        def submit_next():
            row = next(queue, None)
            if row is not None:
                future = objects_pool.submit(
                    copier.copy, by_key[row.key], Video.migrated_key(row.key)
                )
                running[future] = row

        for _ in range(concurrency * 2):
            submit_next()
        while running:
            finished, _ = wait(running, timeout=FLUSH_EVERY, return_when=FIRST_COMPLETED)
            for future in finished:
                row = running.pop(future)
                try:
                    checksum, copied = future.result()
                except Exception as err:  # noqa: BLE001  (recorded; the video fails)
                    failures.append(f"{row.key}: {_reason(err)}")
                    MigrationObject.objects.filter(pk=row.pk).update(error=_reason(err))
                    continue
                row.state, row.checksum, row.error = MigrationObject.State.VERIFIED, checksum, ""
                done.append(row)
                if copied:
                    result.objects_copied += 1
                    result.bytes_copied += row.size
                else:
                    result.objects_skipped += 1
                if not failures:
                    submit_next()
            now = time.monotonic()
            if done and (now - flushed >= FLUSH_EVERY or not running):
                flush()
                flushed = now
            if now - lock_renewed >= lock_every:
                migration_lock_renew(video_id=video.pk, owner=owner)
                lock_renewed = now
        if done:
            flush()
    return failures


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


def videos_migrate_to_scaleway(
    *,
    video_ids=None,
    limit: int | None = None,
    batch_size: int = 100,
    concurrency: int | None = None,
    delete_source: bool = False,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> dict:
    """Migrate the selected legacy videos one after the other; one failure stops nothing.

    ``video_ids`` given: those videos (skipped with a reason when not in AWS); else every
    legacy video in AWS, read ``batch_size`` at a time, at most ``limit``.
    """
    started = time.monotonic()
    results: list[VideoMigration] = []
    if video_ids:
        known = {str(v.pk): v for v in Video.objects.filter(pk__in=list(video_ids))}
        videos = []
        for video_id in video_ids:
            video = known.get(str(video_id))
            if video is None:
                results.append(VideoMigration(str(video_id), "failed", reason="no such video"))
            else:
                videos.append(video)
        videos = videos[:limit] if limit else videos
    else:
        queryset = videos_to_migrate()
        videos = (queryset[:limit] if limit else queryset).iterator(chunk_size=batch_size)
    for video in videos:
        results.append(
            video_migrate_to_scaleway(
                video=video,
                concurrency=concurrency,
                delete_source=delete_source,
                dry_run=dry_run,
                progress=progress,
            )
        )
    return migration_summary(results, seconds=time.monotonic() - started, dry_run=dry_run)


def migration_summary(results: list[VideoMigration], *, seconds: float, dry_run: bool) -> dict:
    by_status = {
        status: [r for r in results if r.status == status]
        for status in ("migrated", "skipped", "failed", "dry-run")
    }
    copied = sum(r.bytes_copied for r in results)
    return {
        "dry_run": dry_run,
        "videos": len(results),
        "migrated": len(by_status["migrated"]),
        "skipped": len(by_status["skipped"]),
        "failed": len(by_status["failed"]),
        "failures": [{"video": r.video_id, "reason": r.reason} for r in by_status["failed"]],
        "skips": [{"video": r.video_id, "reason": r.reason} for r in by_status["skipped"]],
        "objects": sum(r.objects for r in results),
        "objects_copied": sum(r.objects_copied for r in results),
        "objects_skipped": sum(r.objects_skipped for r in results),
        "bytes": sum(r.bytes for r in results),
        "bytes_copied": copied,
        "sources_deleted": sum(r.sources_deleted for r in results),
        "seconds": round(seconds, 3),
        "bytes_per_second": round(copied / seconds) if seconds > 0 else 0,
        "results": [r.as_dict() for r in results],
    }


# --- Staff: the admin's "Migrate storage to Scaleway" -----------------------------------------


class MigrationRefused(ValueError):
    """This video cannot be migrated; str(err) says why (shown to staff as skipped)."""


def video_migration_enqueue(*, video: Video, dry_run: bool = False) -> str:
    """Enqueue the migration of one legacy video (the Celery task), after commit.

    Refused unless the video is one ``videos_to_migrate`` lists. A broker outage is refused
    too (logged), so staff see it instead of a lost request.
    """
    from .tasks import migrate_videos_to_scaleway  # tasks import services: import late

    if not videos_to_migrate().filter(pk=video.pk).exists():
        raise MigrationRefused(
            f"it is not a legacy video in AWS (pipeline {video.transcode_pipeline or 'none'}, "
            f"location {video.storage_location or 'none'})"
        )
    if dry_run:
        return "its migration to Scaleway will be enqueued"
    try:
        transaction.on_commit(lambda: migrate_videos_to_scaleway.delay([str(video.pk)]))
    except Exception as err:  # noqa: BLE001 - a broker outage is reported, not raised
        logger.exception("Could not enqueue the migration of video %s.", video.pk)
        raise MigrationRefused("the task queue did not answer: try again later") from err
    return "migration to Scaleway enqueued"
