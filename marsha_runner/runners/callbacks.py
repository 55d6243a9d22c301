"""Completion adapter: the library's per-rendition callback → one outcome for the host.

The library calls ``TRANSCODING_ENDED_CALLBACK_PATH`` with its Video once per finished
rendition and on failure (DESIGN §7.6). We look at the job tree instead: a transcoding is
over when none of its jobs is pending/waiting/processing/completing, and succeeded when all
completed. The host callback (``RUNNERS_TRANSCODING_ENDED_CALLBACK``) is called after commit,
maybe more than once per transcoding (it must act once); nothing here raises into the library.
"""

import logging
from functools import partial

from django.conf import settings
from django.db import transaction
from django.utils.module_loading import import_string
from django_peertube_runner_connector.models import (
    RunnerJobState,
    Video,
    VideoFile,
)
from django_peertube_runner_connector.utils.files import get_hls_resolution_playlist_filename

from .selectors import ACTIVE_STATES, runner_jobs_of_video
from .services import TranscodingOutcome

logger = logging.getLogger(__name__)


def transcoding_outcome(*, video: Video) -> TranscodingOutcome | None:
    """The outcome of ``video``'s transcoding, or None while a job is still active."""
    jobs = list(runner_jobs_of_video(video_uuid=video.uuid).values("state", "error", "payload"))
    if not jobs or any(job["state"] in ACTIVE_STATES for job in jobs):
        return None
    files = VideoFile.objects.filter(video=video, streamingPlaylist__isnull=False)
    video_keys = {f.resolution: f.filename for f in files}
    playlist_keys = {r: get_hls_resolution_playlist_filename(k) for r, k in video_keys.items()}
    error = None
    failed = [job for job in jobs if job["state"] != RunnerJobState.COMPLETED]
    if failed:
        reasons = [job["error"] for job in failed if job["error"]]
        label = RunnerJobState(failed[0]["state"]).label.lower()
        error = f"Transcoding {label}: {reasons[0]}" if reasons else f"Transcoding {label}."
    else:
        expected = {job["payload"]["output"]["resolution"] for job in jobs}
        missing = sorted(expected - set(video_keys))
        if missing:
            error = f"Renditions missing from storage: {missing}."
    playlist = getattr(video, "streamingPlaylist", None) if video_keys else None
    master = None
    if playlist is not None:
        master = playlist.playlistFilename or f"{video.directory}/master.m3u8"
    return TranscodingOutcome(
        destination=video.directory,
        base_name=video.baseFilename or "",
        succeeded=error is None,
        error=error,
        resolutions=sorted(video_keys),
        master_playlist_key=master,
        video_keys=dict(sorted(video_keys.items())),
        playlist_keys=dict(sorted(playlist_keys.items())),
        thumbnail_key=video.thumbnailFilename or None,
    )


def _host_notify(video_uuid) -> None:
    try:
        video = Video.objects.filter(uuid=video_uuid).first()
        if video is None:
            return
        outcome = transcoding_outcome(video=video)
        if outcome is None:
            return
        callback = import_string(settings.RUNNERS_TRANSCODING_ENDED_CALLBACK)
        callback(outcome=outcome)
    except Exception:
        logger.exception("The transcoding-ended callback failed for video %s.", video_uuid)


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
