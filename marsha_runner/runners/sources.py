"""Uploaded sources the library keeps rows for: released once no job reads them, listed and
deleted by the operations' cleanup."""

import logging

from django.db import transaction
from django_peertube_runner_connector.models import Video, VideoFile

from marsha_runner.storage import video_storage

from .selectors import runner_jobs_active_exist, runner_jobs_active_of_videos

logger = logging.getLogger(__name__)

UPLOADS_PREFIX = "tmp/"  # where uploads land (the videos app's SOURCE_KEY)


def transcoding_release_source(*, destination: str) -> None:
    """Delete the temp source object and its library row once no job needs it."""
    for video in Video.objects.filter(directory=destination):
        if runner_jobs_active_exist(video_uuid=video.uuid):
            continue
        for source in VideoFile.objects.filter(video=video, streamingPlaylist__isnull=True):
            try:
                # Only an upload is ours to delete: a staff transcoding may read a served
                # rendition or a migrated legacy mp4 where it is.
                uploaded = (source.filename or "").startswith(UPLOADS_PREFIX)
                if uploaded and video_storage().exists(source.filename):
                    video_storage().delete(source.filename)
            except Exception:  # noqa: BLE001  (storage down: keep the row, retry later)
                logger.warning("Could not delete the source %s.", source.filename)
                continue
            source.delete()


def transcoding_source_delete(*, destination: str, source_key: str, dry_run: bool = False):
    """Delete an uploaded source from storage and its rows from the library's tables, both or
    neither; kept (False) while a job of a transcoding reading it is still active.

    Returns True when deleted (or would be, on a dry run).
    """
    with transaction.atomic():
        rows = VideoFile.objects.select_for_update().filter(
            filename=source_key, streamingPlaylist__isnull=True
        )
        video_uuids = {
            str(uuid)
            for uuid in Video.objects.filter(directory=destination).values_list("uuid", flat=True)
        } | {str(uuid) for uuid in rows.values_list("video__uuid", flat=True)}
        busy = runner_jobs_active_of_videos(video_uuids=video_uuids).exists()
        if busy:
            return False
        if dry_run:
            return True
        rows.delete()
        if video_storage().exists(source_key):
            video_storage().delete(source_key)  # raises: the rows come back (rollback)
    return True


def transcoding_sources_listed() -> list[str]:
    """Keys of the uploaded sources the library still has rows for (cleanup candidates)."""
    return list(
        VideoFile.objects.filter(
            streamingPlaylist__isnull=True, filename__startswith=UPLOADS_PREFIX
        )
        .values_list("filename", flat=True)
        .distinct()
    )
