"""``backfill_urls``: recompute the persisted urls of many videos in batches.

Each batch is one SELECT (plus one for its subtitle tracks) and one set-based UPDATE of the rows
whose urls changed. The UPDATE writes a row only if it still has what the batch read: the same
urls, pipeline, location, stamp and resolutions. A migration switching the video, or a
completion publishing a new version, between our read and our write has written fresher urls
itself: overwriting them with ours (built from the old location or stamp) would point players at
the old bucket, or at sources ``--delete-source`` removed. Such rows are counted as ``raced``
and left alone.
"""

import json

import psycopg
from django.db import connection, transaction
from django.utils import timezone

from .constants import SubtitleState
from .media_urls import video_thumbnail_known, video_urls_build
from .models import SubtitleTrack, Video

# The columns a batch compares before writing (with urls): what the urls are built from.
_READ_FIELDS = ("transcode_pipeline", "storage_location", "uploaded_on", "resolutions")


def videos_backfill_urls(*, videos, batch_size: int = 1000, dry_run: bool = False) -> dict:
    """Recompute the persisted urls of ``videos`` (a queryset) in batches; a second run
    changes nothing. The thumbnail of a PeerTube version is taken from the persisted urls when
    there are some (no storage call per video), looked up in storage otherwise."""
    seen = changed = raced = 0
    queryset = videos.only("id", "urls", *_READ_FIELDS).order_by("pk")
    for chunk in _chunks(queryset.iterator(chunk_size=batch_size), batch_size):
        chunk_changed, chunk_raced = _backfill_chunk(chunk, dry_run=dry_run)
        seen, changed, raced = seen + len(chunk), changed + chunk_changed, raced + chunk_raced
    return {"videos": seen, "changed": changed - raced, "raced": raced, "dry_run": dry_run}


def _chunks(rows, size: int):
    """Lists of ``size`` rows (the last one shorter) from an iterator."""
    chunk = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _backfill_chunk(chunk: list[Video], *, dry_run: bool) -> tuple[int, int]:
    """(changed, raced) of one batch: its ready subtitle tracks in one SELECT (Django's
    prefetch costs more than the URLs themselves here), its writes in one UPDATE."""
    tracks: dict = {video.pk: [] for video in chunk}
    for track in SubtitleTrack.objects.filter(
        state=SubtitleState.READY, video_id__in=list(tracks)
    ).only("video_id", "stamp", "state", "language", "key", "created_on"):
        tracks[track.video_id].append(track)
    batch: list[tuple[Video, dict]] = []
    for video in chunk:
        urls = video_urls_build(
            video=video,
            thumbnail_exists=video_thumbnail_known(video),
            subtitle_tracks=tracks[video.pk],
        )
        if urls is not None and urls != video.urls:
            batch.append((video, urls))
    raced = _write_unless_changed(batch) if batch and not dry_run else 0
    return len(batch), raced


def _write_unless_changed(batch: list[tuple[Video, dict]]) -> int:
    """Write each row's new urls if the row is still as read; how many were not."""
    if connection.vendor == "postgresql":
        return len(batch) - _update_from_arrays(batch)
    # Elsewhere (SQLite, the embedded default): re-read under the write lock, then write
    # what did not change, in one transaction.
    with transaction.atomic():
        current = {
            row["id"]: row
            for row in Video.objects.select_for_update()
            .filter(pk__in=[video.pk for video, _ in batch])
            .values("id", "urls", *_READ_FIELDS)
        }
        kept = []
        for video, urls in batch:
            row = current.get(video.pk)
            read = {"id": video.pk, "urls": video.urls}
            read.update({name: getattr(video, name) for name in _READ_FIELDS})
            if row == read:
                video.urls, video.updated_on = urls, timezone.now()
                kept.append(video)
        Video.objects.bulk_update(kept, ["urls", "updated_on"])
    return len(batch) - len(kept)


def _json_or_null(value) -> str | None:
    """SQL NULL for a column that is NULL (JSON's null would not compare equal to it)."""
    return None if value is None else json.dumps(value)


def _update_from_arrays(batch: list[tuple[Video, dict]]) -> int:
    """One UPDATE … FROM unnest(arrays) for the batch, bound server-side in binary: seven
    parameters whatever the batch size. Django's cursor binds on the client, and quoting a
    batch of JSON into the SQL text cost three times the update itself. PostgreSQL re-checks
    the WHERE on the row version it locks, so a row written meanwhile is skipped, not
    overwritten. Rows written."""
    quote = connection.ops.quote_name
    column = {name: quote(Video._meta.get_field(name).column) for name in ("urls", *_READ_FIELDS)}
    arrays = [[], [], [], [], [], [], []]
    for video, urls in batch:
        row = (
            video.pk, json.dumps(urls), _json_or_null(video.urls), video.transcode_pipeline,
            video.storage_location, video.uploaded_on, _json_or_null(video.resolutions),
        )  # fmt: skip
        for array, value in zip(arrays, row, strict=True):
            array.append(value)
    # Names from the model, quoted; every value a parameter. JSON travels as text[] (psycopg
    # has no binary dumper of a JSON string) and is cast by the server.
    sql = (
        f"UPDATE {quote(Video._meta.db_table)} AS v SET {column['urls']} = c.urls, "  # noqa: S608
        f"{quote(Video._meta.get_field('updated_on').column)} = %b "
        "FROM unnest(%b::uuid[], %b::text[]::jsonb[], %b::text[]::jsonb[], %b::text[], "
        "%b::text[], %b::timestamptz[], %b::text[]::jsonb[]) "
        "AS c(id, urls, old, pipeline, location, stamp, res) "
        f"WHERE v.{quote(Video._meta.pk.column)} = c.id "
        f"AND v.{column['urls']} IS NOT DISTINCT FROM c.old "
        f"AND v.{column['transcode_pipeline']} IS NOT DISTINCT FROM c.pipeline "
        f"AND v.{column['storage_location']} IS NOT DISTINCT FROM c.location "
        f"AND v.{column['uploaded_on']} IS NOT DISTINCT FROM c.stamp "
        f"AND v.{column['resolutions']} IS NOT DISTINCT FROM c.res"
    )
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, [timezone.now(), *arrays])
        return cursor.rowcount
