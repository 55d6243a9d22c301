"""A private bucket's HLS: playlists served by us with signed entries.

A presigned URL signs one object, and a playlist names the next file by relative path: so
with VIDEOS_SIGN_URLS_AT_READ the API's HLS URL is our view, which reads the playlist and
rewrites each entry (playlists → this view, media → presigned URLs). Players (ffmpeg, native
HLS, hls.js by default) cannot send the API's JWT with each request: the URL carries a token
instead, issued only in an API answer (same permission as the video detail), signed over
the video id and valid VIDEOS_SIGNED_URL_EXPIRE seconds — the same capability model as the
presigned URLs themselves. Only ``.m3u8`` keys under the served version's HLS folder are
read; media bytes never go through us.
"""

import posixpath
import re

from django.conf import settings
from django.core import signing

from marsha_runner.storage import storage_signed_url

from .constants import TranscodePipeline
from .media_urls import HLS_TOKEN_SALT, video_hls_url, video_media_storage
from .models import Video


class HlsNotFound(Exception):
    """Bad or expired token, another video's or a non-playlist path: the view answers 404."""


def _hls_folder(video: Video) -> tuple:
    """(storage, key of the served version's HLS folder, ending with '/')."""
    stamp = video.active_stamp
    if not video.transcode_pipeline or stamp is None:
        raise HlsNotFound("No served version.")
    storage, prefix = video_media_storage(video=video)
    if video.transcode_pipeline == TranscodePipeline.AWS:
        master = video.legacy_manifest_key(stamp)
    else:
        master = video.master_playlist_key(stamp)
    return storage, prefix + posixpath.dirname(master) + "/"


def _hls_key_inside(folder: str, base: str, reference: str) -> str | None:
    """The key ``reference`` names from ``base`` (a folder key), or None outside ``folder``."""
    key = posixpath.normpath(posixpath.join(base, reference))
    return key if key.startswith(folder) and "\0" not in key else None


_URI_ATTRIBUTE = re.compile(r'URI="([^"]*)"')


def video_hls_playlist(*, video_id, token: str, path: str) -> str:
    """The playlist ``path`` of the served version, each entry rewritten to work for
    VIDEOS_SIGNED_URL_EXPIRE seconds from now; ``HlsNotFound`` for anything else."""
    if not settings.VIDEOS_SIGN_URLS_AT_READ:
        raise HlsNotFound("Playlists are read from the bucket.")
    try:
        signing.TimestampSigner(salt=HLS_TOKEN_SALT).unsign(
            f"{video_id}:{token}", max_age=settings.VIDEOS_SIGNED_URL_EXPIRE
        )
        video = Video.objects.get(id=video_id)
    except (signing.BadSignature, Video.DoesNotExist) as err:
        raise HlsNotFound("No such playlist.") from err
    storage, folder = _hls_folder(video)
    key = _hls_key_inside(folder, folder, path)
    if key is None or not key.endswith(".m3u8") or not storage.exists(key):
        raise HlsNotFound("No such playlist.")
    with storage.open(key, "rb") as handle:
        text = handle.read().decode("utf-8")
    base = posixpath.dirname(key)

    def entry(reference: str) -> str:
        if "://" in reference or reference.startswith("/"):
            return reference  # absolute: not ours to sign
        target = _hls_key_inside(folder, base, reference.split("?")[0].split("#")[0])
        if target is None:
            return reference
        if target.endswith(".m3u8"):
            return video_hls_url(video=video, path=target[len(folder) :])
        return storage_signed_url(storage, target, expire=settings.VIDEOS_SIGNED_URL_EXPIRE)

    lines = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            line = _URI_ATTRIBUTE.sub(lambda match: f'URI="{entry(match.group(1))}"', line)
        elif stripped:
            line = entry(stripped)
        lines.append(line)
    return "\n".join(lines) + "\n"
