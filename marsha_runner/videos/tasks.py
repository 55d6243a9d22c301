"""Celery tasks of the videos app: thin shells around the services."""

from celery import shared_task
from django.conf import settings

from marsha_runner.runners.services import SourceUnreadable

from . import services


def _countdowns() -> list[int]:
    return list(settings.VIDEO_LAUNCH_RETRY_COUNTDOWNS)


@shared_task(bind=True, max_retries=None, acks_late=True)
def video_launch_transcoding(self, video_id: str, stamp: int) -> None:
    """Launch the transcoding of one upload; retry with backoff while the source is unreadable.

    Eager mode (the embedded default, tests) runs the retries inline, without waiting.
    """
    countdowns = _countdowns()
    attempt = self.request.retries
    try:
        services.video_launch_transcoding(
            video_id=video_id, stamp=int(stamp), final_attempt=attempt >= len(countdowns)
        )
    except SourceUnreadable as err:
        raise self.retry(exc=err, countdown=countdowns[attempt]) from err
