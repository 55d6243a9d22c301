"""Completion adapter: the library's per-rendition callback → one outcome for the host.

The library calls ``TRANSCODING_ENDED_CALLBACK_PATH`` with its Video once per finished
rendition and on failure (docs/design.md#callback-per-rendition). We look at the job tree
instead: a transcoding is over when none of its jobs is pending/waiting/processing/completing,
and succeeded when all completed. The host callback (``RUNNERS_TRANSCODING_ENDED_CALLBACK``) is
called after commit, once per transcoding: whoever moves the transcoded video out of
``TO_TRANSCODE`` in one conditional UPDATE notifies, every other caller (another rendition's
process, the library's own callback) finds the row moved and stays quiet. Nothing here raises
into the library.

While jobs are still active, each finished rendition rewrites the master playlist with the
renditions stored so far and tells the host (``RUNNERS_TRANSCODING_PROGRESS_CALLBACK``, issue
18): a video is playable from its first rendition. The host may hear one progress more than
once (or after a rendition it already knows): it must only ever grow what it serves.
"""

import logging
from functools import partial

from django.conf import settings
from django.db import transaction
from django.utils.module_loading import import_string
from django_peertube_runner_connector.models import Video, VideoState

from .outcome import transcoding_conclude, transcoding_progress

logger = logging.getLogger(__name__)


def transcoding_outcome_claim(*, video_uuid, succeeded: bool) -> bool:
    """Move the transcoded video from ``TO_TRANSCODE`` to its final state; True for the one
    caller whose UPDATE changed the row (PostgreSQL re-checks the WHERE after a concurrent
    commit, so two processes finishing at once cannot both win)."""
    final = VideoState.PUBLISHED if succeeded else VideoState.TRANSCODING_FAILED
    return bool(
        Video.objects.filter(uuid=video_uuid, state=VideoState.TO_TRANSCODE).update(state=final)
    )


def transcoding_outcome_reopen(*, video_uuid) -> None:
    """A job of a concluded transcoding runs again (a staff requeue): back to
    ``TO_TRANSCODE``, so the outcome that follows is told in turn, once."""
    Video.objects.filter(uuid=video_uuid).exclude(state=VideoState.TO_TRANSCODE).update(
        state=VideoState.TO_TRANSCODE
    )


def _host_notify(video_uuid) -> None:
    try:
        video = Video.objects.filter(uuid=video_uuid).first()
        if video is None:
            return
        outcome = transcoding_conclude(video=video)
        if outcome is None:
            _host_progress(video)
            return
        if not transcoding_outcome_claim(video_uuid=video_uuid, succeeded=outcome.succeeded):
            return
        callback = import_string(settings.RUNNERS_TRANSCODING_ENDED_CALLBACK)
        callback(outcome=outcome)
    except Exception:
        logger.exception("The transcoding-ended callback failed for video %s.", video_uuid)


def _host_progress(video) -> None:
    """Renditions stored while others are still to come: the master lists them, the host is
    told (a transcoding that already failed tells nothing more)."""
    path = getattr(settings, "RUNNERS_TRANSCODING_PROGRESS_CALLBACK", None)
    if not path or video.state != VideoState.TO_TRANSCODE:
        return
    progress = transcoding_progress(video=video)
    if progress is not None:
        import_string(path)(progress=progress)


def transcoding_ended_notify(*, video_uuid) -> None:
    """Decide, after commit, whether the transcoding is over and tell the host if so."""
    try:
        transaction.on_commit(partial(_host_notify, video_uuid))
    except Exception:
        logger.exception("Could not schedule the transcoding-ended check of %s.", video_uuid)


def library_transcoding_ended(video) -> None:
    """``TRANSCODING_ENDED_CALLBACK_PATH``: the library's callback; never raises."""
    try:
        transcoding_ended_notify(video_uuid=video.uuid)
    except Exception:
        logger.exception("Transcoding-ended adapter failed.")
