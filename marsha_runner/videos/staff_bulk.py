"""Staff transcoding actions over any number of videos, in batches through Celery (issue 18).

A bulk action over the catalogue (10,000 legacy videos switched to PEERTUBE, ...) must never
delay a user's upload. Its videos are handed to Celery in batches of ``BULK_BATCH_SIZE`` on the
``staff`` queue (``settings.CELERY_STAFF_QUEUE``): a worker takes from the default queue and
the staff queue in turn, so a user's launch waits for at most one batch per worker process.
The launches of these videos go to the staff queue too, and their runner jobs are in the
``STAFF`` priority class: with 10,000 of them pending, a new upload's first job is still the
first one a runner is offered.
"""

import logging

from celery import current_app
from django.conf import settings
from django.db import transaction

from .models import Video
from .staff_transcoding import video_retranscode, video_switch_to_peertube, video_transcode_missing
from .transitions import VideoRefused

logger = logging.getLogger(__name__)

BULK_BATCH_SIZE = 20
BULK_TASK = "marsha_runner.videos.tasks.videos_bulk_run"
BULK_ACTIONS = {
    "retranscode": video_retranscode,
    "switch_to_peertube": video_switch_to_peertube,
    "transcode_missing": video_transcode_missing,
}


def videos_bulk_preview(queryset) -> list[str]:
    """What the confirmation page says a bulk action will do."""
    return [
        f"The selected videos are handed to Celery in batches of {BULK_BATCH_SIZE} on the "
        f"'{settings.CELERY_STAFF_QUEUE}' queue, after user uploads.",
        "Each video is checked when its batch runs: one the action does not apply to is "
        "skipped (the worker's log says why); its runner jobs come after every upload's.",
    ]


def videos_bulk_enqueue(*, action: str, queryset, batch_size: int = BULK_BATCH_SIZE) -> str:
    """Hand the videos of ``queryset`` to Celery in batches (after commit); says how many.
    Ids are read in chunks, never the rows."""
    if action not in BULK_ACTIONS:
        raise ValueError(f"Unknown bulk action {action!r}.")
    ids = queryset.order_by("pk").values_list("pk", flat=True).iterator(chunk_size=2000)
    batches, batch = [], []
    for video_id in ids:
        batch.append(str(video_id))
        if len(batch) >= batch_size:
            batches.append(batch)
            batch = []
    if batch:
        batches.append(batch)

    def send():
        task = current_app.tasks[BULK_TASK]
        for chunk in batches:
            task.apply_async((action, chunk), queue=settings.CELERY_STAFF_QUEUE)

    transaction.on_commit(send)
    count = sum(len(chunk) for chunk in batches)
    logger.info("Bulk %s: %d videos in %d batches enqueued.", action, count, len(batches))
    return f"{count} videos enqueued in {len(batches)} batches"


def videos_bulk_run(*, action: str, video_ids) -> dict:
    """One batch: the action on each video, a refusal skipping it (logged); the counts."""
    run = BULK_ACTIONS[action]
    done = skipped = 0
    for video_id in video_ids:
        try:
            run(video_id=video_id)
            done += 1
        except (VideoRefused, Video.DoesNotExist) as err:
            skipped += 1
            logger.info("Bulk %s: video %s skipped: %s.", action, video_id, err)
    return {"done": done, "skipped": skipped}
