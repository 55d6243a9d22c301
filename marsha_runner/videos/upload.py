"""Upload flow: create a video, issue an upload, accept its end, abandon a stale one."""

import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from marsha_runner.storage import get_upload_backend, video_storage
from marsha_runner.storage.base import UploadPolicy, UploadRefused

from .constants import UploadState
from .launch import video_launch_enqueue
from .models import Video
from .reasons import ErrorCode
from .transitions import (
    VideoRefused,
    video_error_clear,
    video_error_set,
    video_next_stamp,
    video_notify_on_commit,
)

logger = logging.getLogger(__name__)


def video_create(*, title: str) -> Video:
    video = Video(title=title, upload_state=UploadState.PENDING)
    video.full_clean()
    video.save()
    return video


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

    stamp = video_next_stamp(video)
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
    cleared = video_error_clear(video)
    video.transcode_source = ""  # this stamp's launch reads its own upload
    video.save(
        update_fields=[
            "processing_stamp",
            "upload_declared_size",
            "upload_state",
            *cleared,
            "transcode_source",
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

    storage = video_storage()
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
    cleared = video_error_clear(video)
    video.size = size
    video.launch_refused_on = None
    video.upload_ended_on = timezone.now()  # upload-ended → playable / ready start here
    video.processing_by_staff = False  # a user's upload: before staff work (issue 18)
    video.save(
        update_fields=[
            "upload_state",
            *cleared,
            "size",
            "launch_refused_on",
            "upload_ended_on",
            "processing_by_staff",
            "updated_on",
        ]
    )
    transaction.on_commit(lambda: video_launch_enqueue(video_id=video.id, stamp=stamp))
    video_notify_on_commit(video)
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
        storage = video_storage()
        key = video.source_key(video.processing_stamp)
        exists = storage.exists(key)
        if video.active_stamp is not None:
            outcome = "restored_ready"
            video.upload_state = UploadState.READY
            video.processing_stamp = None
            error_fields = video_error_clear(video)
        elif exists:
            outcome = "errored"
            video.upload_state = UploadState.ERROR
            error_fields = video_error_set(
                video,
                code=ErrorCode.UPLOAD_NOT_ENDED,
                detail=f"The upload was never ended: an object of {storage.size(key)} bytes "
                "was left at its key and upload-ended did not come in time.",
            )
        else:
            outcome = "reset"
            video.processing_stamp = None
            error_fields = video_error_clear(video)
        if dry_run:
            return outcome
        video.save(update_fields=["upload_state", "processing_stamp", *error_fields, "updated_on"])
        if outcome == "restored_ready" and exists:
            storage.delete(key)
        if outcome != "reset":
            video_notify_on_commit(video)
    logger.info("Upload of video %s abandoned: %s.", video_id, outcome)
    return outcome
