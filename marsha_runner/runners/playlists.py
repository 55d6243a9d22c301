"""The HLS master playlist of a transcoded video, written from its stored renditions and
subtitles.

A version's transcripts are ``<directory>/<base name>-<language>.vtt`` (the library's naming);
each gets a WebVTT media playlist ``<base name>-subtitles-<language>.m3u8`` (one segment: the
whole file) named by the master in an ``EXT-X-MEDIA TYPE=SUBTITLES`` group that every
variant references, so hls.js, Safari and native players offer the captions.
"""

import math
import os
import re

from django.conf import settings
from django.core.files.base import ContentFile
from django_peertube_runner_connector.models import Video, VideoStreamingPlaylist
from django_peertube_runner_connector.utils.files import (
    get_hls_resolution_playlist_filename,
    get_video_directory,
)

from marsha_runner.storage import storage_listdir, storage_replace, video_storage

from .probe import hls_codecs, probe_video_stream

SUBTITLES_GROUP = "subtitles"


def subtitle_vtt_key(*, destination: str, base_name: str, language: str) -> str:
    """``<destination>/<base name>-<language>.vtt`` (the library's naming)."""
    return f"{destination}/{base_name}-{language}.vtt"


def subtitle_playlist_name(*, base_name: str, language: str) -> str:
    return f"{base_name}-subtitles-{language}.m3u8"


def subtitle_languages_stored(*, video: Video) -> list[str]:
    """Languages of the transcripts stored in ``video``'s directory, sorted."""
    pattern = re.compile(rf"^{re.escape(video.baseFilename or '')}-([A-Za-z0-9_-]+)\.vtt$")
    _dirs, files = storage_listdir(video_storage(), video.directory)
    return sorted(match[1] for name in files if (match := pattern.match(name)))


def subtitle_playlist_write(*, video: Video, language: str) -> str:
    """The WebVTT media playlist of one transcript: one segment, the whole file, as long as
    the video (players need a duration to place it)."""
    base = video.baseFilename or ""
    seconds = float(video.duration or 1)
    vtt = os.path.basename(
        subtitle_vtt_key(destination=video.directory, base_name=base, language=language)
    )
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:3",
        f"#EXT-X-TARGETDURATION:{math.ceil(seconds)}",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        f"#EXTINF:{seconds:.3f},",
        vtt,
        "#EXT-X-ENDLIST",
    ]
    name = subtitle_playlist_name(base_name=base, language=language)
    key = get_video_directory(video, name)
    storage_replace(
        video_storage(), key, ContentFile(("\n".join(lines) + "\n").encode(), name=name)
    )
    return key


def _subtitle_media_lines(*, video: Video) -> list[str]:
    """One ``EXT-X-MEDIA`` line per stored transcript, its media playlist written."""
    names = dict(getattr(settings, "ALL_LANGUAGES", settings.LANGUAGES))
    lines = []
    for language in subtitle_languages_stored(video=video):
        key = subtitle_playlist_write(video=video, language=language)
        name = str(names.get(language, language)).replace('"', "'")
        lines.append(
            f'#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="{SUBTITLES_GROUP}",NAME="{name}",'
            f'LANGUAGE="{language}",DEFAULT=NO,AUTOSELECT=YES,FORCED=NO,'
            f'URI="{os.path.basename(key)}"'
        )
    return lines


def master_playlist_write(*, video: Video, playlist: VideoStreamingPlaylist) -> str | None:
    """Write ``master.m3u8`` (BANDWIDTH, RESOLUTION, FRAME-RATE, CODECS) from the metadata each
    rendition's probe saved at completion, rather than re-probing every file, and the
    subtitles group of the transcripts stored beside them.

    ``CODECS`` is what ffprobe read in the runner's file (profile, level, audio object type);
    when a stream cannot be named exactly the attribute is left out, never guessed.
    """
    files = list(playlist.videoFiles.order_by("resolution"))
    if not files:
        return None
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-INDEPENDENT-SEGMENTS"]
    subtitles = _subtitle_media_lines(video=video)
    lines += subtitles
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
        if subtitles:
            line += f',SUBTITLES="{SUBTITLES_GROUP}"'
        lines += [line, get_hls_resolution_playlist_filename(os.path.basename(file.filename))]
    key = get_video_directory(video, "master.m3u8")
    storage_replace(
        video_storage(), key, ContentFile(("\n".join(lines) + "\n").encode(), name="master.m3u8")
    )
    if playlist.playlistFilename != key:
        playlist.playlistFilename = key
        playlist.save(update_fields=["playlistFilename", "updatedAt"])
    return key
