"""Celery tasks of the migration app: thin shells around the services."""

from celery import shared_task

from . import services


@shared_task(acks_late=True)
def migrate_videos_to_scaleway(video_ids: list[str], delete_source: bool = False) -> dict:
    """Migrate these legacy videos (the admin action enqueues it); returns the summary.

    Safe to redeliver: verified objects are skipped, a migrated video is skipped, and the
    per-video lock keeps a second delivery from copying alongside the first.
    """
    return services.videos_migrate_to_scaleway(
        video_ids=[str(v) for v in video_ids], delete_source=delete_source
    )
