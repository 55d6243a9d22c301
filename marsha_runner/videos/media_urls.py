"""The ``urls`` of a video's served version (Marsha's shape), persisted or signed at read.

Persisted URLs are storage_public_url(storage, key) of the storage holding the object: never
signed, never a disk path. A private bucket is signed at read time (video_urls_for_client),
its playlists served by our view (hls.py) at the URL ``video_hls_url`` builds.
"""

import hashlib
import posixpath

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.urls import reverse

from marsha_runner.storage import (
    legacy_storage,
    storage_public_url,
    storage_signed_url,
    url_is_signed,
    video_storage,
)

from .constants import MIGRATED_PREFIX, StorageLocation, SubtitleState, TranscodePipeline
from .models import Video

HLS_TOKEN_SALT = "marsha_runner.videos.hls"


def hls_cache_buster(resolutions, languages=()) -> str:
    """Changes when the rendition list or the subtitle languages change (both are in the
    master playlist), so players refetch the master playlist."""
    rendition_list = ",".join(str(r) for r in sorted(resolutions))
    if languages:
        rendition_list += ";subtitles=" + ",".join(sorted(languages))
    return hashlib.sha256(rendition_list.encode()).hexdigest()[:12]


def url_with_cache_buster(url: str, resolutions, languages=()) -> str:
    # A presigned URL is signed over its query string: one more parameter would break it.
    # Its signature already changes on each read, which busts caches the same way.
    if url_is_signed(url):
        return url
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}v={hls_cache_buster(resolutions, languages)}"


def video_media_storage(*, video: Video) -> tuple:
    """(storage, key prefix) holding the active version's files.

    AWS pipeline: the legacy bucket, or the Scaleway bucket under ``aws/`` once migrated.
    PeerTube pipeline: the video storage.
    """
    if video.transcode_pipeline == TranscodePipeline.AWS:
        if video.storage_location == StorageLocation.SCALEWAY:
            return video_storage(), MIGRATED_PREFIX
        return legacy_storage(), ""
    return video_storage(), ""


def video_urls_build(
    *,
    video: Video,
    thumbnail_exists: bool | None = None,
    sign: bool = False,
    subtitle_tracks: list | None = None,
) -> dict | None:
    """The ``urls`` of the active version (Marsha's shape), or None when there is none.

    ``manifests.hls``, ``mp4`` and ``thumbnails`` by resolution; ``previews`` for legacy AWS
    outputs. ``thumbnail_exists`` spares a storage lookup when the caller knows (backfills);
    ``sign`` signs each URL for VIDEOS_SIGNED_URL_EXPIRE seconds (a private bucket, at read).
    ``subtitle_tracks``: the video's ready tracks when the caller read them for many videos at
    once (a backfill), instead of ``video.subtitle_tracks``.
    """
    stamp = video.active_stamp
    if not video.transcode_pipeline or stamp is None:
        return None
    storage, prefix = video_media_storage(video=video)

    def url(key: str) -> str:
        if sign and key.endswith(".m3u8"):  # its entries must be signed too: our view
            return video_hls_url(video=video, path=posixpath.basename(key))
        if sign:
            return storage_signed_url(
                storage, prefix + key, expire=settings.VIDEOS_SIGNED_URL_EXPIRE
            )
        return storage_public_url(storage, prefix + key)

    resolutions = sorted(int(r) for r in video.resolutions or [])
    subtitles = _subtitle_urls(video, sign=sign, tracks=subtitle_tracks)
    if video.transcode_pipeline == TranscodePipeline.AWS:
        urls = {
            "manifests": {
                "hls": url_with_cache_buster(url(video.legacy_manifest_key(stamp)), resolutions)
            },
            "mp4": {str(r): url(video.legacy_mp4_key(stamp, r)) for r in resolutions},
            "thumbnails": {str(r): url(video.legacy_thumbnail_key(stamp, r)) for r in resolutions},
            "previews": url(video.legacy_preview_key(stamp)),
        }
        if subtitles:  # the legacy CMAF master is AWS's: it does not name them
            urls["subtitles"] = subtitles
        return urls
    thumbnail_key = video.thumbnail_key(stamp)
    if thumbnail_exists is None:
        thumbnail_exists = storage.exists(prefix + thumbnail_key)
    thumbnail = url(thumbnail_key) if thumbnail_exists else None
    master = url(video.master_playlist_key(stamp))
    urls = {
        "manifests": {"hls": url_with_cache_buster(master, resolutions, subtitles)},
        "mp4": {str(r): url(video.rendition_video_key(stamp, r)) for r in resolutions},
        "thumbnails": {str(r): thumbnail for r in resolutions} if thumbnail else {},
    }
    if subtitles:
        urls["subtitles"] = subtitles
    return urls


def _subtitle_urls(video: Video, *, sign: bool, tracks=None) -> dict:
    """{language: URL} of the ready transcripts of the served version. They are stored in the
    video storage whatever the pipeline (a legacy video's transcript too)."""
    storage = video_storage()
    if sign:
        expire = settings.VIDEOS_SIGNED_URL_EXPIRE
        return {
            language: storage_signed_url(storage, key, expire=expire)
            for language, key in _subtitle_keys(video, tracks).items()
        }
    return {
        language: storage_public_url(storage, key)
        for language, key in _subtitle_keys(video, tracks).items()
    }


def _subtitle_keys(video: Video, tracks=None) -> dict:
    """{language: key} of the ready subtitle tracks (transcripts) of the served version,
    among ``tracks`` when given, else ``video.subtitle_tracks.all()`` (a prefetch serves it)."""
    tracks = sorted(
        (
            track
            for track in (video.subtitle_tracks.all() if tracks is None else tracks)
            if track.stamp == video.active_stamp and track.state == SubtitleState.READY
        ),
        key=lambda track: track.created_on,
    )
    return {track.language: track.key for track in tracks}


def video_refresh_urls(*, video: Video, thumbnail_exists: bool | None = None) -> Video:
    """Rebuild and persist the urls of the active version (completion, migration).

    ``thumbnail_exists``: known by a caller that looked before locking the row.
    """
    urls = video_urls_build(video=video, thumbnail_exists=thumbnail_exists)
    if urls is None:
        raise ValidationError("Only a transcoded version has URLs to refresh.")
    video.urls = urls
    video.save(update_fields=["urls", "updated_on"])
    return video


def video_urls_for_client(*, video: Video) -> dict | None:
    """The urls an API answer carries: the persisted ones, or signed now for a private bucket.

    Either way each works for at least the configured lifetime from the moment it is served.
    """
    if settings.VIDEOS_SIGN_URLS_AT_READ and video.urls:
        return video_urls_build(
            video=video, sign=True, thumbnail_exists=video_thumbnail_known(video)
        )
    return video.urls


def video_hls_url(*, video: Video, path: str) -> str:
    """Our URL of the playlist ``path`` (relative to the HLS folder), with a fresh token."""
    signed = signing.TimestampSigner(salt=HLS_TOKEN_SALT).sign(str(video.id))
    token = signed[len(str(video.id)) + 1 :]
    return reverse("video-hls", kwargs={"video_id": video.id, "token": token, "path": path})


def video_thumbnail_known(video: Video) -> bool | None:
    """What the persisted urls say about the thumbnail (None: nothing persisted, look)."""
    if video.urls is None:
        return None
    return bool(video.urls.get("thumbnails"))
