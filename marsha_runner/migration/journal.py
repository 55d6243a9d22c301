"""The migration's writes to the database: what is listed, verified, uploading, and where
each video stands. Batched: a run writes per flush (about twice a second per video) and per
part of a large object, never per small object."""

from functools import partial

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from marsha_runner.telemetry.instruments import migration_objects_record
from marsha_runner.videos.models import Video

from .copier import PartJournal
from .models import MigrationObject, MigrationPart, MigrationVideo
from .stores import ObjectInfo


def listing_record(video: Video, listed: list[ObjectInfo]) -> list[MigrationObject]:
    """Upsert the progress rows of what is listed; a changed source object is pending again."""
    if connection.vendor == "postgresql":
        _listing_upsert(video, listed)
    else:
        _listing_save(video, listed)
    keys = {info.key for info in listed}
    return [
        row
        for row in MigrationObject.objects.filter(video=video).order_by("key")
        if row.key in keys
    ]


# Reset when the source object changed (another size or ETag): copy it again.
_PENDING_AGAIN = {"state": MigrationObject.State.PENDING, "checksum": "", "verified_on": None}


def _sql_names() -> tuple[str, dict[str, str]]:
    """MigrationObject's table and its columns by field name, quoted for the raw SQL here."""
    quote = connection.ops.quote_name
    meta = MigrationObject._meta
    return quote(meta.db_table), {f.name: quote(f.column) for f in meta.concrete_fields}


def _listing_save(video: Video, listed: list[ObjectInfo]) -> None:
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
            for name, value in _PENDING_AGAIN.items():
                setattr(row, name, value)
            changed.append(row)
    MigrationObject.objects.bulk_create(new, batch_size=1000, ignore_conflicts=True)
    if changed:
        MigrationObject.objects.bulk_update(
            changed, ["size", "source_etag", *_PENDING_AGAIN], batch_size=1000
        )


def _listing_upsert(video: Video, listed: list[ObjectInfo]) -> None:
    """One INSERT … SELECT FROM unnest(keys, sizes, etags) ON CONFLICT DO UPDATE. The ORM's
    bulk_create binds every field of every row: on small objects that was as much CPU as the
    rest of a video's bookkeeping together (py-spy). Other columns take the model's defaults."""
    table, column = _sql_names()
    listed_from = {"key": "l.key", "size": "l.size", "source_etag": "l.etag"}
    names, values, params = [], [], []
    for field in MigrationObject._meta.concrete_fields:
        if field.primary_key:
            continue
        names.append(column[field.name])
        if field.name in listed_from:
            values.append(listed_from[field.name])
            continue
        values.append("%s")
        value = video.pk if field.name == "video" else field.get_default()
        params.append(field.get_db_prep_save(value, connection))
    again = ", ".join(f"{column[name]} = %s" for name in _PENDING_AGAIN)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} AS o ({', '.join(names)}) "  # noqa: S608
            f"SELECT {', '.join(values)} "
            "FROM unnest(%s::text[], %s::bigint[], %s::text[]) AS l(key, size, etag) "
            f"ON CONFLICT ({column['video']}, {column['key']}) DO UPDATE "
            f"SET {column['size']} = EXCLUDED.{column['size']}, "
            f"{column['source_etag']} = EXCLUDED.{column['source_etag']}, {again} "
            f"WHERE o.{column['size']} <> EXCLUDED.{column['size']} "
            f"OR o.{column['source_etag']} <> EXCLUDED.{column['source_etag']}",
            [
                *params,
                [info.key for info in listed],
                [info.size for info in listed],
                [info.etag for info in listed],
                *_PENDING_AGAIN.values(),
            ],
        )


def verified_record(video_id, rows: list[MigrationObject]) -> None:
    """Mark ``rows`` verified (each with its checksum) and count them on the video's
    progress, in one transaction of two statements."""
    now = timezone.now()
    for row in rows:
        row.state, row.error, row.verified_on = MigrationObject.State.VERIFIED, "", now
    with transaction.atomic():
        _objects_verified(rows, now)
        MigrationVideo.objects.filter(video_id=video_id).update(
            objects_done=F("objects_done") + len(rows),
            bytes_done=F("bytes_done") + sum(row.size for row in rows),
        )
        # /metrics: objects and bytes copied (counted once committed).
        transaction.on_commit(
            partial(migration_objects_record, copied=len(rows), size=sum(r.size for r in rows))
        )


def _objects_verified(rows: list[MigrationObject], now) -> None:
    """One UPDATE … FROM unnest(ids, checksums) on PostgreSQL: Django's bulk_update builds a
    CASE per row and field, a fifth of a run's CPU on small objects (measured with py-spy)."""
    if connection.vendor != "postgresql":
        MigrationObject.objects.bulk_update(
            rows, ["state", "checksum", "error", "verified_on"], batch_size=1000
        )
        return
    table, column = _sql_names()
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS o "  # noqa: S608  (names quoted)
            f"SET {column['state']} = %s, {column['error']} = '', "
            f"{column['verified_on']} = %s, {column['checksum']} = c.checksum "
            "FROM unnest(%s::bigint[], %s::text[]) AS c(id, checksum) "
            f"WHERE o.{column['id']} = c.id",
            [
                MigrationObject.State.VERIFIED,
                now,
                [r.pk for r in rows],
                [r.checksum for r in rows],
            ],
        )


def object_error_record(row: MigrationObject, reason: str) -> None:
    MigrationObject.objects.filter(pk=row.pk).update(error=reason)
    migration_objects_record(failed=1)


class DatabasePartJournal(PartJournal):
    """Multipart uploads and their verified parts, in ``MigrationObject``/``MigrationPart``."""

    def upload_of(self, row):
        upload_id = (
            MigrationObject.objects.filter(pk=row.pk).values_list("upload_id", flat=True).first()
        )
        if not upload_id:
            return "", {}
        parts = MigrationPart.objects.filter(object_id=row.pk, upload_id=upload_id)
        return upload_id, {p.number: (p.md5, p.etag, p.size) for p in parts}

    def upload_started(self, row, upload_id):
        MigrationObject.objects.filter(pk=row.pk).update(upload_id=upload_id)

    def part_verified(self, row, upload_id, number, size, md5, etag):
        MigrationPart.objects.bulk_create(
            [
                MigrationPart(
                    object_id=row.pk,
                    upload_id=upload_id,
                    number=number,
                    size=size,
                    md5=md5,
                    etag=etag,
                )
            ],  # fmt: skip
            ignore_conflicts=True,
        )

    def upload_ended(self, row):
        with transaction.atomic():
            MigrationObject.objects.filter(pk=row.pk).update(upload_id="")
            MigrationPart.objects.filter(object_id=row.pk).delete()


def recorded_uploads(video: Video) -> set[str]:
    """Upload ids a run of this video recorded and may continue."""
    return set(
        MigrationObject.objects.filter(video=video)
        .exclude(upload_id="")
        .values_list("upload_id", flat=True)
    )


def video_progress_start(video: Video, *, worker: str) -> None:
    now = timezone.now()
    fields = {"state": MigrationVideo.State.RUNNING, "worker": worker, "reason": ""}
    updated = MigrationVideo.objects.filter(video=video).update(
        **fields, attempts=F("attempts") + 1, started_on=now, finished_on=None
    )
    if not updated:
        MigrationVideo.objects.get_or_create(
            video=video, defaults={**fields, "attempts": 1, "started_on": now}
        )


def video_progress_listed(video: Video, rows: list[MigrationObject]) -> None:
    verified = [row for row in rows if row.state == MigrationObject.State.VERIFIED]
    MigrationVideo.objects.filter(video=video).update(
        objects_total=len(rows),
        bytes_total=sum(row.size for row in rows),
        objects_done=len(verified),
        bytes_done=sum(row.size for row in verified),
    )


def video_progress_end(video_id, *, state: str, reason: str = "") -> None:
    MigrationVideo.objects.filter(video_id=video_id).update(
        state=state, reason=reason[:2000], finished_on=timezone.now()
    )


def videos_progress_queue(video_ids: list) -> None:
    """Fan-out: each video is ``queued`` until a worker starts it (one INSERT … ON CONFLICT
    and one UPDATE for the lot)."""
    MigrationVideo.objects.bulk_create(
        [MigrationVideo(video_id=v) for v in video_ids], batch_size=1000, ignore_conflicts=True
    )
    MigrationVideo.objects.filter(video_id__in=video_ids).exclude(
        state=MigrationVideo.State.RUNNING
    ).update(state=MigrationVideo.State.QUEUED, reason="", updated_on=timezone.now())
