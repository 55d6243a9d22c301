"""Staff: the admin's "Migrate storage to Scaleway" action."""

import logging

from django.db import transaction

from marsha_runner.videos.constants import storage_location_label
from marsha_runner.videos.models import Video

from . import journal
from .models import MigrationVideo
from .run import migration_task_send
from .selectors import videos_to_migrate

logger = logging.getLogger(__name__)
QUEUE_DOWN = "the task queue did not answer: try again later"


class MigrationRefused(ValueError):
    """This video cannot be migrated; str(err) says why (shown to staff as skipped)."""


def video_migration_enqueue(*, video: Video, dry_run: bool = False) -> str:
    """Enqueue the migration of one legacy video (its Celery task), after commit.

    Refused unless the video is one ``videos_to_migrate`` lists. The broker is called after
    commit, and its failure is caught there, where it happens: outside a transaction it is
    refused at once (staff see it); inside one it is logged and the video's progress says
    ``failed`` with the reason, instead of an exception escaping someone else's commit.
    """
    if not videos_to_migrate().filter(pk=video.pk).exists():
        raise MigrationRefused(
            f"it is not a legacy video in AWS (pipeline {video.transcode_pipeline or 'none'}, "
            f"location {storage_location_label(video.storage_location)})"
        )
    if dry_run:
        return "its migration to Scaleway will be enqueued"
    journal.videos_progress_queue([video.pk])
    refused: list[Exception] = []

    def send():
        try:
            migration_task_send(video_id=video.pk)
        except Exception as err:  # noqa: BLE001 - a broker outage is reported, not raised
            logger.exception("Could not enqueue the migration of video %s.", video.pk)
            journal.video_progress_end(
                video.pk, state=MigrationVideo.State.FAILED, reason=QUEUE_DOWN
            )
            refused.append(err)

    transaction.on_commit(send)
    if refused:  # no transaction around us: it ran at once
        raise MigrationRefused(QUEUE_DOWN) from refused[0]
    return "migration to Scaleway enqueued"
