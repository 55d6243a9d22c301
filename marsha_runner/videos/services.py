"""Services of the videos app: every write to a Video goes through one of these functions.

The API, the Celery tasks, the admin and the commands all call them; none holds logic itself.
"""

import hashlib
import logging
import posixpath
import re
import time

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.files.storage import storages
from django.db import transaction
from django.db.models import Prefetch
from django.urls import reverse
from django.utils import timezone

from marsha_runner.runners.services import (
    SourceRefused,
    SourceUnreadable,
    TranscodingOutcome,
    transcoding_add_renditions,
    transcoding_create,
    transcoding_discard,
    transcoding_ladder_of,
    transcoding_outcome_get,
    transcoding_prepare,
    transcoding_release_source,
)
from marsha_runner.storage import (
    get_upload_backend,
    legacy_storage,
    storage_public_url,
    storage_replace,
    storage_signed_url,
    video_storage,
)
from marsha_runner.storage.base import UploadPolicy, UploadRefused
from marsha_runner.websocket.notify import video_state_changed

from .constants import (
    MIGRATED_PREFIX,
    StorageLocation,
    SubtitleState,
    TranscodePipeline,
    UploadState,
)
from .models import SubtitleTrack, Video

logger = logging.getLogger(__name__)

SOURCE_UNREADABLE = "source unreadable"  # not in storage (any more) when the launch read it
UNREADABLE_CONTAINER = "unreadable container"  # in storage, but not a container ffprobe reads
# "vod/<video id>/video/<stamp>": the only destinations we ever hand to the runners app.
DESTINATION_RE = re.compile(r"^vod/(?P<video_id>[0-9a-f-]{36})/video/(?P<stamp>\d+)$")


class VideoRefused(ValueError):
    """A client request this video cannot accept now; the message says why (a 4xx).

    ``field`` names the input at fault, so an API can point at it.
    """

    def __init__(self, message: str, *, field: str = "detail"):
        super().__init__(message)
        self.field = field


def video_create(*, title: str) -> Video:
    video = Video(title=title, upload_state=UploadState.PENDING)
    video.full_clean()
    video.save()
    return video


def _next_stamp(video: Video) -> int:
    """Unix time now, bumped past every stamp already issued so stamps are unique per video."""
    issued = [s for s in (video.processing_stamp, video.active_stamp, video.launched_stamp) if s]
    return max([int(time.time()), *(s + 1 for s in issued)])


@transaction.atomic
def video_initiate_upload(*, video_id, filename: str, mimetype: str, size: int) -> dict:
    """Issue a new stamp and hand back the upload strategy's ``{url, fields}``.

    A ready video stays ready to watch: ``uploaded_on`` and ``urls`` keep the active version
    until the new one completes. A video being transcoded refuses a new upload, so a running
    job tree is never orphaned by a newer stamp.
    """
    video = Video.objects.select_for_update().get(id=video_id)
    if not mimetype.startswith("video/"):
        raise VideoRefused(
            f"The file must be a video (video/*), not {mimetype!r}.", field="mimetype"
        )
    if size > settings.UPLOAD_MAX_SIZE:
        raise VideoRefused(
            f"The file is larger than {settings.UPLOAD_MAX_SIZE} bytes.", field="size"
        )
    if size <= 0:
        raise VideoRefused("The file is empty.", field="size")
    if video.upload_state == UploadState.PROCESSING:
        raise VideoRefused("This video is being transcoded: wait until it is ready or errored.")

    stamp = _next_stamp(video)
    policy = UploadPolicy(
        key=video.source_key(stamp),
        content_type=mimetype,
        size=size,
        expires_in=settings.UPLOAD_EXPIRES_IN,
    )
    try:
        answer = get_upload_backend().initiate_upload(policy)
    except UploadRefused as err:
        raise VideoRefused(str(err)) from err

    video.processing_stamp = stamp
    video.upload_declared_size = size
    video.upload_state = UploadState.PENDING
    video.upload_error_reason = ""
    video.save(
        update_fields=[
            "processing_stamp",
            "upload_declared_size",
            "upload_state",
            "upload_error_reason",
        ]
    )
    return answer


@transaction.atomic
def video_upload_ended(*, video_id, file_key: str) -> Video:
    """Check the uploaded object, move the video to ``processing`` and launch after commit.

    Idempotent: the same key again answers the current state and starts nothing, so one
    upload gives one runner job tree whatever the client retries.
    """
    video = Video.objects.select_for_update().get(id=video_id)
    stamp = video.processing_stamp
    if stamp is None or file_key != video.source_key(stamp):
        raise VideoRefused("This key is not the upload issued for this video.", field="file_key")
    if video.upload_state != UploadState.PENDING:
        return video  # already ended: processing, ready or error for this very stamp

    storage = storages["videos"]
    if not storage.exists(file_key):
        raise VideoRefused("No uploaded file under this key.", field="file_key")
    size = storage.size(file_key)
    if not size:
        raise VideoRefused("The uploaded file is empty.", field="file_key")
    declared = video.upload_declared_size
    if declared is not None and size != declared:
        comparison = "larger" if size > declared else "smaller"
        raise VideoRefused(
            f"The uploaded file is {size} bytes, {comparison} than the {declared} bytes "
            "declared: upload it again.",
            field="file_key",
        )

    video.upload_state = UploadState.PROCESSING
    video.upload_error_reason = ""
    video.size = size
    video.save(update_fields=["upload_state", "upload_error_reason", "size", "updated_on"])
    transaction.on_commit(lambda: video_launch_enqueue(video_id=video.id, stamp=stamp))
    _notify_on_commit(video)
    return video


def video_upload_abandon(*, video_id, issued_before: int, dry_run: bool = False) -> str | None:
    """An upload issued before ``issued_before`` (a stamp) whose upload-ended never came:

    ``restored_ready`` when a served version exists (the stray object is deleted),
    ``errored`` with the reason when an object was left at the key (kept for a look),
    ``reset`` to a clean ``pending`` with the stamp dropped otherwise; None when the video
    moved on meanwhile. ``dry_run`` says which, writing nothing.
    """
    with transaction.atomic():
        video = (
            Video.objects.select_for_update()
            .filter(
                id=video_id, upload_state=UploadState.PENDING, processing_stamp__lt=issued_before
            )
            .first()
        )
        if video is None:
            return None
        storage = storages["videos"]
        key = video.source_key(video.processing_stamp)
        exists = storage.exists(key)
        if video.active_stamp is not None:
            outcome = "restored_ready"
            video.upload_state = UploadState.READY
            video.processing_stamp = None
        elif exists:
            outcome = "errored"
            video.upload_state = UploadState.ERROR
            video.upload_error_reason = (
                f"The upload was never ended: an object of {storage.size(key)} bytes was left "
                "at its key and upload-ended did not come in time."
            )
        else:
            outcome = "reset"
            video.processing_stamp = None
            video.upload_error_reason = ""
        if dry_run:
            return outcome
        video.save(
            update_fields=["upload_state", "processing_stamp", "upload_error_reason", "updated_on"]
        )
        if outcome == "restored_ready" and exists:
            storage.delete(key)
        if outcome != "reset":
            _notify_on_commit(video)
    logger.info("Upload of video %s abandoned: %s.", video_id, outcome)
    return outcome


def video_launch_enqueue(*, video_id, stamp: int) -> bool:
    """Hand the launch of one upload to Celery; never raises (call it after commit).

    With the broker down the video stays ``processing`` without a job tree: that state is
    itself the record of the launch we owe, and ``runners_watchdog`` enqueues it again once
    the broker answers (no outbox table: the Video row already says what is missing). False,
    logged, when the broker refused it.
    """
    from .tasks import video_launch_transcoding  # tasks import services: import late

    try:
        video_launch_transcoding.delay(str(video_id), int(stamp))
    except Exception:  # noqa: BLE001 - a broker outage must not lose the committed state
        logger.exception(
            "Could not enqueue the launch of video %s stamp %s: the watchdog will retry.",
            video_id,
            stamp,
        )
        return False
    return True


def video_launch_transcoding(*, video_id, stamp: int, final_attempt: bool = True) -> None:
    """Create the runner job tree of one upload, or put the video in ``error`` with a reason.

    ``SourceUnreadable`` (the object may not be visible yet) propagates for a retry unless this
    is the ``final_attempt``; whatever else goes wrong ends in ``error``: a failed launch never
    leaves a video ``processing`` forever.
    """
    try:
        _video_launch(video_id=video_id, stamp=stamp)
    except SourceRefused as err:
        _video_fail(video_id=video_id, stamp=stamp, reason=str(err) or "source refused")
    except SourceUnreadable as err:
        if not final_attempt:
            raise
        _video_fail(
            video_id=video_id, stamp=stamp, reason=_unreadable_reason(video_id, stamp, err)
        )
    except Exception:  # noqa: BLE001 - any other failure must still end in error
        logger.exception("Launch of video %s stamp %s failed.", video_id, stamp)
        _video_fail(video_id=video_id, stamp=stamp, reason="the transcoding could not be started")


def _video_launch(*, video_id, stamp: int) -> None:
    """Prepare (probe, thumbnail: slow I/O, no lock held, so other requests on this video
    are never kept waiting), then in one transaction lock the row, re-check the state read
    before and create the job tree with our ``launched_stamp`` marker, or discard."""
    video = Video.objects.filter(id=video_id).first()
    if not _launch_due(video, stamp):
        logger.info("Launch of video %s stamp %s: nothing to do.", video_id, stamp)
        return
    prepared = transcoding_prepare(
        source_key=video.source_key(stamp),
        destination=video.output_prefix(stamp),
        base_name=str(stamp),
    )
    discard = True
    try:
        with transaction.atomic():
            video = Video.objects.select_for_update().filter(id=video_id).first()
            if not _launch_due(video, stamp):
                # Changed while we probed: a new upload, a deletion, or a concurrent launch
                # that won (its tree uses the same thumbnail key: keep it then).
                discard = video is None or video.launched_stamp != stamp
                logger.info("Launch of video %s stamp %s: done meanwhile.", video_id, stamp)
                return
            # Same transaction as our marker: both the job tree and launched_stamp, or neither.
            transcoding_create(prepared=prepared)
            video.launched_stamp = stamp
            video.duration = prepared.duration
            video.save(update_fields=["launched_stamp", "duration", "updated_on"])
            discard = False
    finally:
        if discard:
            transcoding_discard(prepared=prepared)


def _launch_due(video: Video | None, stamp: int) -> bool:
    return _is_processing(video, stamp) and video.launched_stamp != stamp


def _is_processing(video: Video | None, stamp: int) -> bool:
    return (
        video is not None
        and video.upload_state == UploadState.PROCESSING
        and video.processing_stamp == int(stamp)
    )


def video_error(*, video_id, stamp: int, reason: str) -> bool:
    """``processing`` → ``error`` with ``reason``, for this stamp only (a watchdog giving up).

    False when the video is no longer processing this stamp: nothing is changed twice.
    """
    return _video_fail(video_id=video_id, stamp=stamp, reason=reason)


def _unreadable_reason(video_id, stamp: int, err: Exception) -> str:
    """Why ffprobe could not read an upload: the file is gone, or it is not a readable
    container (then ffprobe's own words, e.g. "Invalid data found when processing input")."""
    key = Video(id=video_id).source_key(stamp)
    storage = storages["videos"]
    try:
        present = storage.exists(key) and storage.size(key) > 0
    except Exception:  # noqa: BLE001 - a storage that cannot say: keep the generic reason
        present = False
    if not present:
        return SOURCE_UNREADABLE
    return f"{UNREADABLE_CONTAINER}: {err}" if str(err) else UNREADABLE_CONTAINER


@transaction.atomic
def _video_fail(*, video_id, stamp: int, reason: str) -> bool:
    """``processing`` → ``error`` for this stamp only; anything else is left alone."""
    video = Video.objects.select_for_update().filter(id=video_id).first()
    if not _is_processing(video, stamp):
        return False
    video.upload_state = UploadState.ERROR
    video.upload_error_reason = reason[:1000]
    video.save(update_fields=["upload_state", "upload_error_reason", "updated_on"])
    logger.info("Video %s stamp %s: error (%s).", video_id, stamp, reason)
    _notify_on_commit(video)
    return True


def video_transcoding_ended(*, outcome: TranscodingOutcome) -> None:
    """The runners app's callback (``settings.RUNNERS_TRANSCODING_ENDED_CALLBACK``).

    It may come more than once for one transcoding: only the first call for a ``processing``
    video whose stamp matches changes anything. Never raises into the library.
    """
    try:
        _video_transcoding_ended(outcome)
    except Exception:  # noqa: BLE001 - never raise into the library (DESIGN §7.6)
        logger.exception("Transcoding-ended callback failed for %s.", outcome.destination)


def video_transcoding_complete(*, video: Video) -> bool:
    """Apply the outcome of ``video``'s transcoding once all its jobs are finished.

    The entry point for whoever finds a ``processing`` video whose callback never came (a
    watchdog, an operator). True if it moved the video to ``ready`` or ``error``; False while
    a job is still active, when no job tree exists, or when it was already applied.
    """
    stamp = video.processing_stamp
    if not _is_processing(video, stamp) or video.launched_stamp != stamp:
        return False
    outcome = transcoding_outcome_get(destination=video.output_prefix(stamp))
    if outcome is None:
        return False
    return _video_transcoding_ended(outcome)


def _video_transcoding_ended(outcome: TranscodingOutcome) -> bool:
    """True if this call moved the video (the first one for its processing stamp)."""
    match = DESTINATION_RE.match(outcome.destination or "")
    if not match or match["stamp"] != str(outcome.base_name):
        logger.warning("Transcoding ended for an unknown destination %r.", outcome.destination)
        return False
    video_id, stamp = match["video_id"], int(match["stamp"])

    video = Video.objects.filter(id=video_id).first()
    if not _is_processing(video, stamp):
        logger.info("Transcoding of video %s stamp %s ended again: ignored.", video_id, stamp)
        return False
    # Storage round trips first (one per rendition file: seconds on S3), with no lock held.
    missing, thumbnail_exists = [], False
    if outcome.succeeded:
        missing = _missing_outputs(video, stamp, outcome.resolutions)
        thumbnail_exists = storages["videos"].exists(video.thumbnail_key(stamp))

    with transaction.atomic():
        video = Video.objects.select_for_update().filter(id=video_id).first()
        if not _is_processing(video, stamp):  # re-checked under the lock
            logger.info("Transcoding of video %s stamp %s ended again: ignored.", video_id, stamp)
            return False
        if not outcome.succeeded:
            acted = _video_fail(
                video_id=video_id, stamp=stamp, reason=outcome.error or "transcoding failed"
            )
        elif missing:
            acted = _video_fail(
                video_id=video_id,
                stamp=stamp,
                reason="renditions missing from storage: " + ", ".join(missing),
            )
        else:
            _video_ready(video, stamp, outcome.resolutions, thumbnail_exists=thumbnail_exists)
            acted = True
    if acted:
        transaction.on_commit(lambda: _release_source(outcome.destination))
    return acted


def _missing_outputs(video: Video, stamp: int, resolutions) -> list[str]:
    """Keys the ready version would serve but storage does not hold (never ready too early)."""
    if not resolutions:
        return ["every rendition"]
    storage = storages["videos"]
    keys = [video.master_playlist_key(stamp)]
    for resolution in resolutions:
        keys += [
            video.rendition_playlist_key(stamp, resolution),
            video.rendition_video_key(stamp, resolution),
        ]
    return [key.rsplit("/", 1)[-1] for key in keys if not storage.exists(key)]


def _video_ready(video: Video, stamp: int, resolutions, *, thumbnail_exists: bool) -> None:
    video.upload_state = UploadState.READY
    video.upload_error_reason = ""
    video.uploaded_on = Video.stamp_to_datetime(stamp)
    video.resolutions = sorted({int(r) for r in resolutions})
    video.transcode_pipeline = TranscodePipeline.PEERTUBE
    video.storage_location = storage_location_of(storages["videos"])
    video.full_clean()
    video.save()
    video_refresh_urls(video=video, thumbnail_exists=thumbnail_exists)
    logger.info("Video %s stamp %s: ready %s.", video.id, stamp, video.resolutions)
    _notify_on_commit(video)


def _release_source(destination: str) -> None:
    try:
        transcoding_release_source(destination=destination)
    except Exception:  # noqa: BLE001 - a leftover temp file is not worth an error
        logger.exception("Could not release the source of %s.", destination)


def storage_location_of(storage) -> str | None:
    """SCALEWAY when new videos live in S3; null for the filesystem or memory storages."""
    from storages.backends.s3 import S3Storage

    return StorageLocation.SCALEWAY if isinstance(storage, S3Storage) else None


# --- URLs --------------------------------------------------------------------------------------
# Persisted URLs are storage_public_url(storage, key) of the storage holding the object: never
# signed, never a disk path. A private bucket is signed at read time (video_urls_for_client).


def hls_cache_buster(resolutions) -> str:
    """Changes when the rendition list changes, so players refetch the master playlist."""
    rendition_list = ",".join(str(r) for r in sorted(resolutions))
    return hashlib.sha256(rendition_list.encode()).hexdigest()[:12]


def _with_cache_buster(url: str, resolutions) -> str:
    # A presigned URL is signed over its query string: one more parameter would break it.
    # Its signature already changes on each read, which busts caches the same way.
    if "X-Amz-Signature=" in url or "Signature=" in url:
        return url
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}v={hls_cache_buster(resolutions)}"


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
    *, video: Video, thumbnail_exists: bool | None = None, sign: bool = False
) -> dict | None:
    """The ``urls`` of the active version (Marsha's shape), or None when there is none.

    ``manifests.hls``, ``mp4`` and ``thumbnails`` by resolution; ``previews`` for legacy AWS
    outputs. ``thumbnail_exists`` spares a storage lookup when the caller knows (backfills);
    ``sign`` signs each URL for VIDEOS_SIGNED_URL_EXPIRE seconds (a private bucket, at read).
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
    if video.transcode_pipeline == TranscodePipeline.AWS:
        return {
            "manifests": {
                "hls": _with_cache_buster(url(video.legacy_manifest_key(stamp)), resolutions)
            },
            "mp4": {str(r): url(video.legacy_mp4_key(stamp, r)) for r in resolutions},
            "thumbnails": {str(r): url(video.legacy_thumbnail_key(stamp, r)) for r in resolutions},
            "previews": url(video.legacy_preview_key(stamp)),
        }
    thumbnail_key = video.thumbnail_key(stamp)
    if thumbnail_exists is None:
        thumbnail_exists = storage.exists(prefix + thumbnail_key)
    thumbnail = url(thumbnail_key) if thumbnail_exists else None
    master = url(video.master_playlist_key(stamp))
    urls = {
        "manifests": {"hls": _with_cache_buster(master, resolutions)},
        "mp4": {str(r): url(video.rendition_video_key(stamp, r)) for r in resolutions},
        "thumbnails": {str(r): thumbnail for r in resolutions} if thumbnail else {},
    }
    subtitles = _subtitle_keys(video)
    if subtitles:
        urls["subtitles"] = {language: url(key) for language, key in subtitles.items()}
    return urls


def _subtitle_keys(video: Video) -> dict:
    """{language: key} of the ready subtitle tracks (transcripts) of the served version.

    Reads ``subtitle_tracks.all()``, so a backfill's prefetch serves it without a query.
    """
    tracks = sorted(
        (
            track
            for track in video.subtitle_tracks.all()
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
        return video_urls_build(video=video, sign=True, thumbnail_exists=_has_thumbnail(video))
    return video.urls


# --- A private bucket's HLS: playlists served by us with signed entries -------------------------
#
# A presigned URL signs one object, and a playlist names the next file by relative path: so
# with VIDEOS_SIGN_URLS_AT_READ the API's HLS URL is our view, which reads the playlist and
# rewrites each entry (playlists → this view, media → presigned URLs). Players (ffmpeg, native
# HLS, hls.js by default) cannot send the API's JWT with each request: the URL carries a token
# instead, issued only in an API answer (same permission as the video detail), signed over
# the video id and valid VIDEOS_SIGNED_URL_EXPIRE seconds — the same capability model as the
# presigned URLs themselves. Only ``.m3u8`` keys under the served version's HLS folder are
# read; media bytes never go through us.

HLS_TOKEN_SALT = "marsha_runner.videos.hls"


class HlsNotFound(Exception):
    """Bad or expired token, another video's or a non-playlist path: the view answers 404."""


def video_hls_url(*, video: Video, path: str) -> str:
    """Our URL of the playlist ``path`` (relative to the HLS folder), with a fresh token."""
    signed = signing.TimestampSigner(salt=HLS_TOKEN_SALT).sign(str(video.id))
    token = signed[len(str(video.id)) + 1 :]
    return reverse("video-hls", kwargs={"video_id": video.id, "token": token, "path": path})


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


def _has_thumbnail(video: Video) -> bool | None:
    """What the persisted urls say about the thumbnail (None: nothing persisted, look)."""
    if video.urls is None:
        return None
    return bool(video.urls.get("thumbnails"))


def videos_backfill_urls(*, videos, batch_size: int = 1000, dry_run: bool = False) -> dict:
    """Recompute the persisted urls of ``videos`` (a queryset) in batches.

    ``iterator`` + ``bulk_update`` of the changed rows only: a batch costs one SELECT, one
    for its subtitle tracks and at most one UPDATE, whatever its size; a second run changes
    nothing. The thumbnail of a
    PeerTube version is taken from the persisted urls when there are some (no storage call
    per video), looked up in storage otherwise.
    """
    seen = changed = 0
    pending: list[Video] = []
    fields = ["urls", "updated_on"]
    ready_tracks = SubtitleTrack.objects.filter(state=SubtitleState.READY)
    queryset = (
        videos.only(
            "id", "uploaded_on", "transcode_pipeline", "storage_location", "resolutions", "urls"
        )
        .prefetch_related(Prefetch("subtitle_tracks", queryset=ready_tracks))
        .order_by("pk")
    )
    for video in queryset.iterator(chunk_size=batch_size):
        seen += 1
        urls = video_urls_build(video=video, thumbnail_exists=_has_thumbnail(video))
        if urls is None or urls == video.urls:
            continue
        changed += 1
        if dry_run:
            continue
        video.urls = urls
        video.updated_on = timezone.now()
        pending.append(video)
        if len(pending) >= batch_size:
            Video.objects.bulk_update(pending, fields, batch_size=batch_size)
            pending = []
    if pending:
        Video.objects.bulk_update(pending, fields, batch_size=batch_size)
    return {"videos": seen, "changed": changed, "dry_run": dry_run}


def _notify_on_commit(video: Video) -> None:
    video_id, state, reason = video.id, video.upload_state, video.upload_error_reason
    transaction.on_commit(
        lambda: video_state_changed(
            video_id=video_id, state=state, payload={"upload_error_reason": reason}
        )
    )


# --- Staff: transcode a ready or errored video again ------------------------------------------


def _video_source_candidates(video: Video):
    """(storage, key, label) of each object a new transcoding may start from, best first:
    the kept upload of the last stamp, then the highest rendition of the served version."""
    storage = storages["videos"]
    if video.processing_stamp:
        yield storage, video.source_key(video.processing_stamp), "its kept upload"
    stamp = video.active_stamp
    if stamp and video.resolutions and video.transcode_pipeline == TranscodePipeline.PEERTUBE:
        top = max(int(r) for r in video.resolutions)
        yield storage, video.rendition_video_key(stamp, top), f"its {top}p rendition"


def _video_legacy_source(video: Video):
    """(storage, key, label) of a legacy AWS video's highest mp4 rendition (AWS bucket, or
    the Scaleway bucket under ``aws/`` once migrated), or None."""
    stamp = video.active_stamp
    if not stamp or not video.resolutions:
        return None
    storage, prefix = video_media_storage(video=video)
    top = max(int(r) for r in video.resolutions)
    return storage, prefix + video.legacy_mp4_key(stamp, top), f"its legacy {top}p mp4"


def _video_source_find(candidates):
    for storage, key, label in candidates:
        if storage.exists(key):
            return storage, key, label
    return None


def _video_transcode_from(video: Video, source, *, dry_run: bool) -> str:
    """Copy ``source`` to a fresh stamp's upload key, set ``processing``, launch after commit.

    The served version (``uploaded_on``, ``urls``) stays until the new one is complete.
    """
    storage, key, label = source
    if dry_run:
        return f"will be transcoded again from {label}"
    stamp = _next_stamp(video)
    with storage.open(key, "rb") as handle:
        storage_replace(storages["videos"], video.source_key(stamp), handle)
    video.processing_stamp = stamp
    video.upload_state = UploadState.PROCESSING
    video.upload_error_reason = ""
    video.save(
        update_fields=["processing_stamp", "upload_state", "upload_error_reason", "updated_on"]
    )
    transaction.on_commit(lambda: video_launch_enqueue(video_id=video.id, stamp=stamp))
    _notify_on_commit(video)
    logger.info("Video %s: transcoding again from %s (stamp %s).", video.id, label, stamp)
    return f"transcoding again from {label}"


@transaction.atomic
def video_retranscode(*, video_id, dry_run: bool = False) -> str:
    """Re-trigger the transcoding of a ready or errored video of the PEERTUBE pipeline (or
    never transcoded), from its kept upload or its highest rendition. Refuses with a reason."""
    video = Video.objects.select_for_update().get(id=video_id)
    if video.upload_state not in (UploadState.READY, UploadState.ERROR):
        raise VideoRefused(f"it is {video.upload_state}: only a ready or errored video")
    if video.transcode_pipeline == TranscodePipeline.AWS:
        raise VideoRefused("it is a legacy AWS video: switch it to the PEERTUBE pipeline")
    source = _video_source_find(_video_source_candidates(video))
    if source is None:
        raise VideoRefused("no source left: neither its upload nor a rendition is in storage")
    return _video_transcode_from(video, source, dry_run=dry_run)


@transaction.atomic
def video_switch_to_peertube(*, video_id, dry_run: bool = False) -> str:
    """Transcode a ready legacy AWS video again through the runners, from its highest mp4.

    It keeps serving the legacy version until the new one is ready; then (``_video_ready``)
    its pipeline becomes PEERTUBE and its location the video storage's.
    """
    video = Video.objects.select_for_update().get(id=video_id)
    if video.transcode_pipeline != TranscodePipeline.AWS:
        raise VideoRefused(f"its pipeline is {video.transcode_pipeline or 'none'}, not AWS")
    if video.upload_state != UploadState.READY:
        raise VideoRefused(f"it is {video.upload_state}: only a ready legacy video")
    source = _video_source_find([s for s in [_video_legacy_source(video)] if s])
    if source is None:
        raise VideoRefused("its highest legacy mp4 rendition is not in storage")
    return _video_transcode_from(video, source, dry_run=dry_run)


@transaction.atomic
def video_transcode_missing(*, video_id, dry_run: bool = False) -> str:
    """Create runner jobs for the renditions a ready video's ladder lacks, and only those
    (PeerTube #6546), from its kept upload or its highest rendition. The served version and
    its renditions stay; the new ones join its master playlist, then the video is ready again
    with every resolution."""
    video = Video.objects.select_for_update().get(id=video_id)
    stamp = video.active_stamp
    if video.upload_state != UploadState.READY:
        raise VideoRefused(f"it is {video.upload_state}: only a ready video")
    peertube = video.transcode_pipeline == TranscodePipeline.PEERTUBE
    if not peertube or not stamp or not video.resolutions:
        raise VideoRefused("only a ready video transcoded by the PeerTube runners")
    storage = storages["videos"]
    top = max(int(r) for r in video.resolutions)
    source = _video_source_find(
        [
            (storage, video.source_key(stamp), "its kept upload"),
            (storage, video.rendition_video_key(stamp, top), f"its {top}p rendition"),
        ]
    )
    if source is None:
        raise VideoRefused("no source left: neither its upload nor a rendition is in storage")
    _storage, key, label = source
    try:
        ladder = transcoding_ladder_of(key=key)
    except (SourceRefused, SourceUnreadable) as err:
        raise VideoRefused(f"{label} cannot be read: {err}") from err
    have = {int(r) for r in video.resolutions}
    missing = [(r, fps) for r, fps in ladder if r not in have]
    names = ", ".join(f"{r}p" for r, _fps in missing)
    if not missing:
        raise VideoRefused(f"its ladder is complete ({', '.join(f'{r}p' for r in sorted(have))})")
    if dry_run:
        return f"will get {names}, from {label}"
    source_key = video.source_key(stamp)
    if key != source_key:
        with storage.open(key, "rb") as handle:
            storage_replace(storage, source_key, handle)
    transcoding_add_renditions(
        source_key=source_key,
        destination=video.output_prefix(stamp),
        base_name=str(stamp),
        existing={r: video.rendition_video_key(stamp, r) for r in sorted(have)},
        missing=missing,
    )
    video.processing_stamp = stamp
    video.launched_stamp = stamp
    video.upload_state = UploadState.PROCESSING
    video.upload_error_reason = ""
    video.save(
        update_fields=[
            "processing_stamp", "launched_stamp", "upload_state", "upload_error_reason",
            "updated_on",
        ]
    )  # fmt: skip
    _notify_on_commit(video)
    logger.info("Video %s: transcoding the missing %s.", video.id, names)
    return f"transcoding the missing {names}, from {label}"
