"""Celery tasks of the migration app: thin shells around the services."""

from celery import shared_task

from marsha_runner.videos.models import Video

from .run import MIGRATE_VIDEO_TASK, videos_migrate_to_scaleway
from .video import VideoMigration, video_migrate_to_scaleway


@shared_task(acks_late=True)
def migrate_videos_to_scaleway(video_ids: list[str], delete_source: bool = False) -> dict:
    """Migrate these legacy videos in one task; returns the summary.

    Safe to redeliver: verified objects are skipped, a migrated video is skipped, and the
    per-video lease keeps a second delivery from copying alongside the first.
    """
    return videos_migrate_to_scaleway(
        video_ids=[str(v) for v in video_ids], delete_source=delete_source
    )


@shared_task(name=MIGRATE_VIDEO_TASK, acks_late=True, reject_on_worker_lost=True)
def migrate_video_to_scaleway(video_id: str, delete_source: bool = False) -> dict:
    """One video of a fanned-out migration (``migrate_to_scaleway --fan-out``).

    ``acks_late`` with ``reject_on_worker_lost``: a worker process killed mid-video puts the
    message back, and the next delivery takes the dead process's lease over and continues
    from the verified objects and parts. A worker whose whole machine is gone is redelivered
    after the broker's visibility timeout (``CELERY_VISIBILITY_TIMEOUT``).
    """
    video = Video.objects.filter(pk=video_id).first()
    if video is None:
        return VideoMigration(str(video_id), "failed", reason="no such video").as_dict()
    return video_migrate_to_scaleway(video=video, delete_source=delete_source).as_dict()
