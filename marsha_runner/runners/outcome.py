"""What a transcoding left, read from its job tree (the contract with the videos app).

A transcoding is over when none of its jobs is pending/waiting/processing/completing, and
succeeded when all completed. Before that, ``transcoding_progress`` says which renditions are
stored so far: a video is playable from its first one (issue 18). Its jobs are the
transcoding jobs only: a transcription job of the same transcoded video has its own outcome
(``transcription.py``) and no ``output``.
"""

from dataclasses import dataclass

from django_peertube_runner_connector.models import (
    RunnerJobState,
    Video,
    VideoFile,
    VideoStreamingPlaylist,
)
from django_peertube_runner_connector.utils.files import get_hls_resolution_playlist_filename

from .playlists import master_playlist_write
from .selectors import ACTIVE_STATES, runner_jobs_of_transcoding


@dataclass(frozen=True)
class TranscodingOutcome:
    """What a finished transcoding left in storage, as the videos app needs it."""

    destination: str
    base_name: str
    succeeded: bool
    error: str | None
    resolutions: list[int]
    master_playlist_key: str | None
    video_keys: dict[int, str]
    playlist_keys: dict[int, str]
    thumbnail_key: str | None


@dataclass(frozen=True)
class TranscodingProgress:
    """The renditions of a running transcoding stored so far, listed by its master playlist."""

    destination: str
    base_name: str
    resolutions: list[int]
    master_playlist_key: str
    video_keys: dict[int, str]
    playlist_keys: dict[int, str]
    thumbnail_key: str | None


def _stored_renditions(video: Video) -> tuple[dict[int, str], dict[int, str]]:
    files = VideoFile.objects.filter(video=video, streamingPlaylist__isnull=False)
    video_keys = {f.resolution: f.filename for f in files}
    playlist_keys = {r: get_hls_resolution_playlist_filename(k) for r, k in video_keys.items()}
    return dict(sorted(video_keys.items())), dict(sorted(playlist_keys.items()))


def transcoding_progress(*, video: Video) -> TranscodingProgress | None:
    """The renditions stored so far, the master playlist rewritten to list them (one atomic
    replace of ``master.m3u8``, so a player reads the old list or the new one, never half);
    None before the first one.

    Two renditions finishing at once in two processes may write in either order: the list
    only grows with each later rendition, and the conclusion writes the whole ladder.
    """
    video_keys, playlist_keys = _stored_renditions(video)
    playlist = VideoStreamingPlaylist.objects.filter(video=video).first()
    if not video_keys or playlist is None:
        return None
    master = master_playlist_write(video=video, playlist=playlist)
    if master is None:
        return None
    return TranscodingProgress(
        destination=video.directory,
        base_name=video.baseFilename or "",
        resolutions=sorted(video_keys),
        master_playlist_key=master,
        video_keys=video_keys,
        playlist_keys=playlist_keys,
        thumbnail_key=video.thumbnailFilename or None,
    )


def transcoding_outcome(*, video: Video) -> TranscodingOutcome | None:
    """The outcome of ``video``'s transcoding, or None while a job is still active."""
    jobs = list(
        runner_jobs_of_transcoding(video_uuid=video.uuid).values("state", "error", "payload")
    )
    if not jobs or any(job["state"] in ACTIVE_STATES for job in jobs):
        return None
    video_keys, playlist_keys = _stored_renditions(video)
    error = None
    # The job that errored is the cause; its children only say "parent errored".
    failed = sorted(
        (job for job in jobs if job["state"] != RunnerJobState.COMPLETED),
        key=lambda job: job["state"] == RunnerJobState.PARENT_ERRORED,
    )
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
        video_keys=video_keys,
        playlist_keys=playlist_keys,
        thumbnail_key=video.thumbnailFilename or None,
    )


def transcoding_conclude(*, video: Video) -> TranscodingOutcome | None:
    """The outcome of a finished transcoding, its master playlist written first when it
    succeeded (from the committed renditions: the same bytes whoever writes it); None while
    a job is still active."""
    outcome = transcoding_outcome(video=video)
    if outcome is not None and outcome.succeeded:
        playlist = VideoStreamingPlaylist.objects.filter(video=video).first()
        if playlist is not None:
            master_playlist_write(video=video, playlist=playlist)
    return outcome
