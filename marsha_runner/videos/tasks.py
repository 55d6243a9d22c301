"""Celery tasks of the videos app: thin shells around the services.

The app's ``ready`` imports this module in every process, so it imports the services in the
tasks: at module level they would bring in the runner connector (socket.io, aiohttp; a
third of a second) at the start of every management command and cron job.
"""

import logging
import time

from celery import shared_task
from django.conf import settings

from marsha_runner.storage.outages import is_outage, outage_describe

logger = logging.getLogger(__name__)


def _countdowns() -> list[int]:
    return list(settings.VIDEO_LAUNCH_RETRY_COUNTDOWNS)


def launch_outage_countdown(retries: int) -> float:
    """Seconds before the next try of a launch whose storage or database did not answer:
    the retry countdowns, then doubling, at most ``VIDEO_LAUNCH_OUTAGE_BACKOFF_MAX``."""
    countdowns = _countdowns() or [1]
    base = countdowns[min(retries, len(countdowns) - 1)]
    doubled = base * 2 ** max(0, retries - len(countdowns) + 1)
    return float(min(doubled, settings.VIDEO_LAUNCH_OUTAGE_BACKOFF_MAX))


@shared_task(bind=True, max_retries=None, acks_late=True)
def video_launch_transcoding(
    self, video_id: str, stamp: int, outage_since: float | None = None, outage_retries: int = 0
) -> None:
    """Launch the transcoding of one upload; retry with backoff while the source is unreadable.

    An outage (the storage or the database does not answer) is not an unreadable source: it
    is retried with backoff for ``VIDEO_LAUNCH_OUTAGE_TOLERANCE`` seconds (its retries do not
    use up the unreadable source's), then left to runners_watchdog, the video still
    ``processing``. Eager mode (the embedded default, tests) runs the retries inline, without
    waiting: an outage there goes to the watchdog at once.
    """
    from marsha_runner.runners.transcoding import SourceUnreadable

    from . import launch

    countdowns = _countdowns()
    attempt = self.request.retries - outage_retries
    try:
        launch.video_launch_transcoding(
            video_id=video_id, stamp=int(stamp), final_attempt=attempt >= len(countdowns)
        )
    except SourceUnreadable as err:
        raise self.retry(exc=err, countdown=countdowns[attempt]) from err
    except Exception as err:
        if not is_outage(err):
            raise
        since = outage_since or time.time()
        waited = time.time() - since
        if self.request.is_eager or waited > settings.VIDEO_LAUNCH_OUTAGE_TOLERANCE:
            logger.warning(
                "Launch of video %s stamp %s: %s for %.0f s, left to the watchdog.",
                video_id, stamp, outage_describe(err), waited,
            )  # fmt: skip
            launch.video_launch_owed(video_id=video_id, stamp=int(stamp))
            return
        countdown = launch_outage_countdown(outage_retries)
        logger.warning(
            "Launch of video %s stamp %s: %s, retried in %.1f s.",
            video_id, stamp, outage_describe(err), countdown,
        )  # fmt: skip
        raise self.retry(
            exc=err,
            countdown=countdown,
            args=(video_id, stamp),
            kwargs={"outage_since": since, "outage_retries": outage_retries + 1},
        ) from err


@shared_task(acks_late=True)
def videos_bulk_run(action: str, video_ids: list) -> dict:
    """One batch of a staff bulk action (``staff_bulk``), on the staff queue."""
    from . import staff_bulk

    return staff_bulk.videos_bulk_run(action=action, video_ids=video_ids)
