"""The HLS master playlist of a transcoded video, written from its stored renditions."""

import os

from django.core.files.base import ContentFile
from django_peertube_runner_connector.models import Video, VideoStreamingPlaylist
from django_peertube_runner_connector.storage import video_storage
from django_peertube_runner_connector.utils.files import (
    get_hls_resolution_playlist_filename,
    get_video_directory,
)

from marsha_runner.storage import storage_replace

from .probe import hls_codecs, probe_video_stream


def master_playlist_write(*, video: Video, playlist: VideoStreamingPlaylist) -> str | None:
    """Write ``master.m3u8`` (BANDWIDTH, RESOLUTION, FRAME-RATE, CODECS) from the metadata each
    rendition's probe saved at completion, rather than re-probing every file.

    ``CODECS`` is what ffprobe read in the runner's file (profile, level, audio object type);
    when a stream cannot be named exactly the attribute is left out, never guessed.
    """
    files = list(playlist.videoFiles.order_by("resolution"))
    if not files:
        return None
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-INDEPENDENT-SEGMENTS"]
    for file in files:
        probe = file.metadata or {}
        stream = probe_video_stream(probe) or {}
        line = f"#EXT-X-STREAM-INF:BANDWIDTH={video.get_bandwidth_bits(file)}"
        line += f",RESOLUTION={stream.get('width') or 0}x{stream.get('height') or 0}"
        if file.fps and file.fps > 0:
            line += f",FRAME-RATE={file.fps}"
        codecs = hls_codecs(probe)
        if codecs:
            line += f',CODECS="{codecs}"'
        lines += [line, get_hls_resolution_playlist_filename(os.path.basename(file.filename))]
    key = get_video_directory(video, "master.m3u8")
    storage_replace(
        video_storage, key, ContentFile(("\n".join(lines) + "\n").encode(), name="master.m3u8")
    )
    if playlist.playlistFilename != key:
        playlist.playlistFilename = key
        playlist.save(update_fields=["playlistFilename", "updatedAt"])
    return key
