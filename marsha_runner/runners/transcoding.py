"""Transcoding: probe, ladder, thumbnail, job creation, outcome (the contract with the videos app).

Reimplements the library's transcode_video + create_transcoding_jobs (docs/design.md#job-creation):
one transaction, every rendition keeps the source fps within the library's rules, an input
under the lowest enabled resolution still gives one rendition, runners pinged on commit.
"""

import logging
import subprocess
import tempfile
from dataclasses import dataclass

from django.conf import settings
from django.core.files import File
from django.db import transaction
from django_peertube_runner_connector.models import Video, VideoFile
from django_peertube_runner_connector.utils.ffprobe import (
    build_file_metadata,
    get_video_stream_fps,
)
from django_peertube_runner_connector.utils.resolutions import (
    compute_max_resolution_to_transcode,
    compute_resolutions_to_transcode,
    to_even,
)
from django_peertube_runner_connector.utils.transcoding.job_creation import compute_output_fps
from django_peertube_runner_connector.utils.video_state import build_next_video_state

from marsha_runner.storage import storage_read_location, storage_replace, video_storage

from .handlers import HLSTranscodingJobHandler
from .outcome import TranscodingOutcome, transcoding_conclude
from .priority import JobPriority
from .probe import ProbeFailed, ffprobe, probe_duration, probe_video_stream

logger = logging.getLogger(__name__)

THUMBNAIL_TIMEOUT = 300


class SourceUnreadable(ProbeFailed):
    """ffprobe could not read the source (maybe not uploaded/visible yet): retry later."""


class SourceRefused(Exception):
    """The source cannot be transcoded; str(err) is a human reason stored on the video."""


def transcoding_probe(*, source_key: str) -> dict:
    """ffprobe JSON of the source (a local path or a URL); SourceUnreadable if unreadable."""
    try:
        url = storage_read_location(video_storage(), source_key)
    except Exception as err:  # noqa: BLE001  (any storage failure means: not readable now)
        raise SourceUnreadable(f"No URL for the source: {type(err).__name__}") from err
    try:
        return ffprobe(url)
    except ProbeFailed as err:
        raise SourceUnreadable(str(err)) from err


def transcoding_fps(*, resolution: int, fps: float) -> int:
    """The library's compute_output_fps, called with its arguments in the right order."""
    return compute_output_fps(resolution=resolution, fps=fps)


def transcoding_ladder(*, input_resolution: int, input_fps: float) -> list[tuple[int, int]]:
    """(resolution, fps) of each rendition, the top one first (the parent job).

    Above the top enabled resolution: down to it. Under the lowest enabled one: one rendition
    at the input's own (even) resolution, never upscaled.
    """
    top = compute_max_resolution_to_transcode(input_resolution)
    if not top:
        top = to_even(input_resolution)
        lower = []
    else:
        lower = compute_resolutions_to_transcode(
            input_resolution=top, include_input=False, strict_lower=True, has_audio=True
        )
        lower = [r for r in lower if r]
    resolutions = [top, *sorted(lower, reverse=True)]
    return [(r, transcoding_fps(resolution=r, fps=input_fps)) for r in resolutions]


def _thumbnail_make(*, url: str, key: str) -> str | None:
    """First frame as JPEG at ``key``; None (logged) when ffmpeg cannot make it."""
    with tempfile.TemporaryDirectory() as tmp:
        output = f"{tmp}/thumbnail.jpg"
        args = ["ffmpeg", "-v", "error", "-y", "-i", url, "-frames:v", "1", "-q:v", "3", output]
        try:
            done = subprocess.run(args, capture_output=True, timeout=THUMBNAIL_TIMEOUT)
        except (OSError, subprocess.TimeoutExpired):
            done = None
        if done is None or done.returncode != 0:
            logger.warning("No thumbnail could be made for %s.", key)
            return None
        with open(output, "rb") as handle:
            return storage_replace(video_storage(), key, File(handle, name="thumbnail.jpg"))


@dataclass(frozen=True)
class TranscodingPrepared:
    """What ``transcoding_prepare`` read and wrote outside any transaction, for the create."""

    source_key: str
    destination: str
    base_name: str
    probe: dict
    duration: float
    size: int
    input_resolution: int
    input_fps: int
    ladder: list[tuple[int, int]]
    thumbnail_key: str | None


def transcoding_picture(probe: dict) -> tuple[int, int]:
    """(width, height) of the probed video stream; SourceRefused when there is no picture to
    transcode (the one check of a launch and of a missing-renditions ladder)."""
    stream = probe_video_stream(probe)
    if stream is None:
        raise SourceRefused("no video stream found (an audio file, or images only)")
    width, height = int(stream.get("width") or 0), int(stream.get("height") or 0)
    if width <= 0 or height <= 0:
        raise SourceRefused("The video stream has no picture size.")
    return width, height


def transcoding_prepare(
    *,
    source_key: str,
    destination: str,
    base_name: str,
    thumbnail_key: str,
    probe: dict | None = None,
) -> TranscodingPrepared:
    """The slow part of a launch, outside any transaction and lock: probe the source (unless
    ``probe`` is given), check it, plan the ladder, make the thumbnail at ``thumbnail_key``
    (the host names its keys). Raises SourceUnreadable / SourceRefused (no video stream,
    unreadable, zero duration...). Writes no row: ``transcoding_create`` does, or
    ``transcoding_discard`` removes the thumbnail.
    """
    if probe is None:
        probe = transcoding_probe(source_key=source_key)
    width, height = transcoding_picture(probe)
    duration = probe_duration(probe) or 0
    if duration <= 0:
        raise SourceRefused("The video has no duration.")
    input_fps = get_video_stream_fps(probe)
    if input_fps < settings.TRANSCODING_FPS_MIN:
        raise SourceRefused(f"The frame rate ({input_fps} fps) cannot be read or is too low.")
    input_resolution = min(width, height)
    ladder = transcoding_ladder(input_resolution=input_resolution, input_fps=input_fps)
    try:
        size = int(probe["format"]["size"])
    except (KeyError, TypeError, ValueError):
        try:
            size = video_storage().size(source_key)
        except Exception as err:  # noqa: BLE001  (not visible in storage yet)
            raise SourceUnreadable(f"No size for the source: {type(err).__name__}") from err

    thumbnail_key = _thumbnail_make(
        url=storage_read_location(video_storage(), source_key), key=thumbnail_key
    )
    return TranscodingPrepared(
        source_key=source_key,
        destination=destination,
        base_name=base_name,
        probe=probe,
        duration=duration,
        size=size,
        input_resolution=input_resolution,
        input_fps=input_fps,
        ladder=ladder,
        thumbnail_key=thumbnail_key,
    )


def transcoding_plan(*, ladder) -> list[tuple[int, int]]:
    """The ladder in the order its jobs are created, hence offered (issue 18): the first rung
    (the one nearest ``TRANSCODING_FIRST_RESOLUTION``, the lower one on a tie; the top one when
    0, PeerTube's order), then the others from the top down.

    The first rung is the one that makes a video playable: measured by bench/scheduling.py on
    a 60 s 1080p with one runner running two jobs (README, "What a client sees").
    """
    first = settings.TRANSCODING_FIRST_RESOLUTION
    if not first or len(ladder) < 2:
        return list(ladder)
    chosen = min(ladder, key=lambda rung: (abs(rung[0] - first), rung[0]))
    return [chosen, *(rung for rung in ladder if rung != chosen)]


def transcoding_create(
    *, prepared: TranscodingPrepared, priority: JobPriority = JobPriority.UPLOAD
) -> str:
    """Rows only: the library's transcoded Video (directory=destination,
    baseFilename=base_name), its source VideoFile and the HLS runner jobs, in one
    transaction (the caller's, when it has one); runners pinged on commit. Returns the
    transcoded video's uuid (str).

    Jobs in ``transcoding_plan`` order, in the ``priority`` class (a user upload's first rung
    in ``UPLOAD_FIRST``); the other rungs wait for the first with
    ``TRANSCODING_LADDER_WAITS_FOR_FIRST`` (PeerTube's tree), else they are pending at once.
    """
    domain = settings.RUNNERS_CALLBACK_DOMAIN.rstrip("/")
    first_priority = JobPriority.UPLOAD_FIRST if priority == JobPriority.UPLOAD else priority
    waits = settings.TRANSCODING_LADDER_WAITS_FOR_FIRST
    with transaction.atomic():
        video = Video.objects.create(
            state=build_next_video_state(),
            directory=prepared.destination,
            baseFilename=prepared.base_name,
            duration=round(prepared.duration),
            thumbnailFilename=prepared.thumbnail_key,
        )
        VideoFile.objects.create(
            video=video,
            filename=prepared.source_key,
            extname="",
            size=prepared.size,
            resolution=prepared.input_resolution,
            fps=prepared.input_fps,
            metadata=build_file_metadata(probe=prepared.probe),
        )
        (first, first_fps), *others = transcoding_plan(ladder=prepared.ladder)
        parent = HLSTranscodingJobHandler(priority=first_priority).create(
            video=video, resolution=first, fps=first_fps, depends_on_runner_job=None, domain=domain
        )
        # One ping for the whole ladder (the first job's): each ping is a request per runner.
        handler = HLSTranscodingJobHandler(priority=priority, ping=False)
        for resolution, fps in others:
            handler.create(
                video=video,
                resolution=resolution,
                fps=fps,
                depends_on_runner_job=parent if waits else None,
                domain=domain,
            )
    logger.info(
        "Transcoding of %s started: %s.",
        prepared.destination,
        ", ".join(f"{r}p@{f}" for r, f in prepared.ladder),
    )
    return str(video.uuid)


def transcoding_discard(*, prepared: TranscodingPrepared) -> None:
    """Undo ``transcoding_prepare`` when no create follows: remove the thumbnail it wrote."""
    if prepared.thumbnail_key:
        try:
            video_storage().delete(prepared.thumbnail_key)
        except Exception:  # noqa: BLE001  (a leftover thumbnail is not worth an error)
            logger.warning("Could not remove the thumbnail %s.", prepared.thumbnail_key)


def transcoding_outcome_get(*, destination: str) -> TranscodingOutcome | None:
    """The outcome of the transcoding written to ``destination``; None while one of its jobs
    is still active, or when no transcoding was started there."""
    video = Video.objects.filter(directory=destination).order_by("-createdAt").first()
    return transcoding_conclude(video=video) if video is not None else None
