"""Migrate many legacy videos from one process, or fan them out as one Celery task each.

One process: ``videos_at_once`` videos in flight, sharing the process's copy pools and memory
budget (``pools``), so one large object never holds back the rest; ``max_seconds`` stops the
run cleanly (nothing new started, large uploads left to continue, leases released).

Many machines: ``videos_migration_fan_out`` enqueues ``migrate_video_to_scaleway`` per video;
each worker takes the video's lease, so a video is migrated once however often its task is
delivered, and a task redelivered after its worker died (``acks_late``) takes the dead lease
over. Progress over all workers: ``selectors.migration_progress``.
"""

import logging
import time
from concurrent.futures import ThreadPoolExecutor, as_completed

from celery import current_app
from django.conf import settings
from django.db import connection

from marsha_runner.videos.models import Video

from . import journal
from .pools import BUDGET_SPENT, CopyPools, Progress
from .selectors import videos_to_migrate
from .video import VideoMigration, video_migrate_to_scaleway

logger = logging.getLogger(__name__)

# The per-video task, by name: the task module (a shell) imports this one, so this one must not
# import it back; MigrationConfig.ready imports it so the name is always registered.
MIGRATE_VIDEO_TASK = "marsha_runner.migration.tasks.migrate_video_to_scaleway"
STATUSES = ("migrated", "skipped", "failed", "stopped", "dry-run")


def migration_task_send(*, video_id, delete_source: bool = False) -> None:
    """Enqueue the per-video task (eager where Celery is); raises when the broker fails."""
    current_app.tasks[MIGRATE_VIDEO_TASK].delay(str(video_id), delete_source=delete_source)


def _selected(video_ids, limit, batch_size, results):
    if not video_ids:
        queryset = videos_to_migrate()
        return (queryset[:limit] if limit else queryset).iterator(chunk_size=batch_size)
    known = {str(v.pk): v for v in Video.objects.filter(pk__in=list(video_ids))}
    videos = []
    for video_id in video_ids:
        video = known.get(str(video_id))
        if video is None:
            results.append(VideoMigration(str(video_id), "failed", reason="no such video"))
        else:
            videos.append(video)
    return videos[:limit] if limit else videos


def videos_migrate_to_scaleway(
    *,
    video_ids=None,
    limit: int | None = None,
    batch_size: int = 100,
    concurrency: int | None = None,
    videos_at_once: int | None = None,
    max_seconds: float | None = None,
    bandwidth: int | None = None,
    delete_source: bool = False,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> dict:
    """Migrate the selected legacy videos, several at once; one failure stops nothing.

    ``video_ids`` given: those videos (skipped with a reason when not in AWS); else every
    legacy video in AWS, read ``batch_size`` at a time, at most ``limit``.
    """
    started = time.monotonic()
    results: list[VideoMigration] = []
    videos = iter(_selected(video_ids, limit, batch_size, results))
    at_once = max(1, videos_at_once or settings.MIGRATION_VIDEOS_AT_ONCE)
    options = {"delete_source": delete_source, "dry_run": dry_run, "progress": progress}

    with CopyPools(concurrency=concurrency, max_seconds=max_seconds, bandwidth=bandwidth) as pools:

        def one(video):
            try:
                return video_migrate_to_scaleway(video=video, pools=pools, **options)
            finally:
                connection.close()  # each video thread had its own connection

        with ThreadPoolExecutor(at_once, thread_name_prefix="migrate-video") as videos_pool:
            running = set()
            for video in videos:
                if pools.stop_reason():
                    results.append(VideoMigration(str(video.pk), "stopped", reason=BUDGET_SPENT))
                    continue
                running.add(videos_pool.submit(one, video))
                if len(running) >= at_once:
                    finished = next(_as_completed(running))
                    running.discard(finished)
                    results.append(finished.result())
            results.extend(future.result() for future in _as_completed(running))
    return migration_summary(results, seconds=time.monotonic() - started, dry_run=dry_run)


def _as_completed(futures):
    return as_completed(list(futures))


def migration_summary(results: list[VideoMigration], *, seconds: float, dry_run: bool) -> dict:
    by_status = {status: [r for r in results if r.status == status] for status in STATUSES}
    copied = sum(r.bytes_copied for r in results)
    totals = {
        name: sum(getattr(r, name) for r in results)
        for name in (
            "objects", "objects_copied", "objects_skipped", "bytes", "bytes_copied",
            "parts_sent", "parts_resumed", "uploads_aborted", "sources_deleted",
        )
    }  # fmt: skip
    return {
        "dry_run": dry_run,
        "videos": len(results),
        **{status.replace("-", "_"): len(by_status[status]) for status in STATUSES[:4]},
        "failures": [{"video": r.video_id, "reason": r.reason} for r in by_status["failed"]],
        "skips": [{"video": r.video_id, "reason": r.reason} for r in by_status["skipped"]],
        **totals,
        "seconds": round(seconds, 3),
        "bytes_per_second": round(copied / seconds) if seconds > 0 else 0,
        "results": [r.as_dict() for r in results],
    }


def videos_migration_fan_out(
    *, video_ids=None, limit: int | None = None, delete_source: bool = False
) -> dict:
    """One Celery task per selected legacy video in AWS; {"queued": n, "error": reason}.

    Marked ``queued`` in the progress table before sending; a broker failure stops the
    fan-out and says how many were sent (a rerun sends the rest: a video is migrated once
    whatever the number of its tasks).
    """
    queryset = videos_to_migrate()
    if video_ids:
        queryset = queryset.filter(pk__in=list(video_ids))
    ids = queryset.values_list("pk", flat=True)
    ids = list(ids[:limit] if limit else ids)
    sent = 0
    for start in range(0, len(ids), 1000):
        batch = ids[start : start + 1000]
        journal.videos_progress_queue(batch)
        for video_id in batch:
            try:
                migration_task_send(video_id=video_id, delete_source=delete_source)
            except Exception as err:  # noqa: BLE001 - reported, the rest can be sent again
                logger.exception("Fan-out stopped: the broker refused video %s.", video_id)
                return {"queued": sent, "error": f"the task queue did not answer: {err}"}
            sent += 1
    return {"queued": sent, "error": ""}
