"""Missing renditions (the staff's "Transcode missing renditions", PeerTube #6546): the ladder
a stored file gives, and jobs for only the renditions a served version lacks."""

import logging

from django.conf import settings
from django.db import transaction
from django_peertube_runner_connector.models import Video, VideoFile, VideoStreamingPlaylist
from django_peertube_runner_connector.utils.ffprobe import (
    build_file_metadata,
    get_video_stream_fps,
)
from django_peertube_runner_connector.utils.video_state import build_next_video_state

from marsha_runner.storage import video_storage

from .handlers import HLSTranscodingJobHandler, rendition_file_record
from .priority import JobPriority
from .probe import probe_duration, probe_stored
from .transcoding import transcoding_ladder, transcoding_picture, transcoding_probe

logger = logging.getLogger(__name__)


def transcoding_ladder_of(*, key: str) -> list[tuple[int, int]]:
    """The (resolution, fps) ladder a stored video file gives, top first. SourceUnreadable /
    SourceRefused as for a launch."""
    probe = transcoding_probe(source_key=key)
    return transcoding_ladder(
        input_resolution=min(transcoding_picture(probe)), input_fps=get_video_stream_fps(probe)
    )


def transcoding_renditions_probe(*, source_key: str, existing: dict) -> dict:
    """ffprobe of the source and of each stored rendition of ``existing`` ({resolution:
    key}): the slow part of ``transcoding_add_renditions``, to run before any lock."""
    return {
        "source": transcoding_probe(source_key=source_key),
        "renditions": {resolution: probe_stored(key=key) for resolution, key in existing.items()},
    }


def transcoding_add_renditions(
    *,
    source_key: str,
    destination: str,
    base_name: str,
    existing: dict,
    missing: list,
    thumbnail_key: str,
    probed: dict | None = None,
) -> str:
    """A transcoded video for ``destination`` that already holds the renditions ``existing``
    ({resolution: key}, probed and listed in its playlist, so the master names them all) and
    one independent HLS job per ``missing`` (resolution, fps) from ``source_key``. Rows in
    the caller's transaction; runners pinged on commit. Returns the transcoded video's uuid.
    ``probed``: ``transcoding_renditions_probe``'s answer, made before the caller's lock.
    """
    probed = probed or transcoding_renditions_probe(source_key=source_key, existing=existing)
    probes, source_probe = probed["renditions"], probed["source"]
    domain = settings.RUNNERS_CALLBACK_DOMAIN.rstrip("/")
    with transaction.atomic():
        video = Video.objects.create(
            state=build_next_video_state(),
            directory=destination,
            baseFilename=base_name,
            duration=round(probe_duration(source_probe) or 0) or None,
            thumbnailFilename=thumbnail_key if video_storage().exists(thumbnail_key) else None,
        )
        VideoFile.objects.create(
            video=video,
            filename=source_key,
            extname="",
            size=video_storage().size(source_key),
            resolution=max(existing) if existing else 0,
            fps=get_video_stream_fps(source_probe),
            metadata=build_file_metadata(probe=source_probe),
        )
        playlist = VideoStreamingPlaylist.objects.create(video=video)
        for resolution, key in existing.items():
            rendition_file_record(
                video=video,
                playlist=playlist,
                resolution=resolution,
                key=key,
                probe=probes[resolution],
            )
        handler = HLSTranscodingJobHandler(priority=JobPriority.STAFF)  # staff work (issue 18)
        for resolution, fps in missing:
            handler.create(
                video=video, resolution=resolution, fps=fps, depends_on_runner_job=None,
                domain=domain,
            )  # fmt: skip
    logger.info(
        "Missing renditions of %s started: %s.",
        destination,
        ", ".join(f"{r}p@{f}" for r, f in missing),
    )
    return str(video.uuid)
