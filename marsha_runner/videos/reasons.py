"""Why a video is in ``error``: a stable code and a sentence for the uploader.

The API answers ``upload_error_code`` and ``upload_error_reason`` (the sentence below), never
the detail: ffprobe's words, a runner's output, a storage endpoint or key, a hostname. Staff
read that detail in the admin (``upload_error_detail``). One table, so the sentence of a code
never drifts between the places that set it.
"""

from django.db import models


class ErrorCode(models.TextChoices):
    NO_VIDEO_STREAM = "no_video_stream", "no video stream"
    SOURCE_REFUSED = "source_refused", "source refused"
    UNREADABLE_CONTAINER = "unreadable_container", "unreadable container"
    SOURCE_MISSING = "source_missing", "source missing"
    TRANSCODING_FAILED = "transcoding_failed", "transcoding failed"
    RENDITIONS_MISSING = "renditions_missing", "renditions missing"
    LAUNCH_FAILED = "launch_failed", "launch failed"
    NEVER_LAUNCHED = "never_launched", "never launched"
    UPLOAD_NOT_ENDED = "upload_not_ended", "upload not ended"


PUBLIC_REASONS = {
    ErrorCode.NO_VIDEO_STREAM: "The file has no video stream (an audio file, or images only).",
    ErrorCode.SOURCE_REFUSED: "The video cannot be transcoded: {detail}",
    ErrorCode.UNREADABLE_CONTAINER: (
        "The file is not a video container that can be read: upload another file."
    ),
    ErrorCode.SOURCE_MISSING: "The uploaded file could not be found: upload it again.",
    ErrorCode.TRANSCODING_FAILED: (
        "The transcoding failed: upload the video again; if it fails again, contact support."
    ),
    ErrorCode.RENDITIONS_MISSING: (
        "The transcoding did not store every rendition: it will be looked at, or upload again."
    ),
    ErrorCode.LAUNCH_FAILED: "The transcoding could not be started: upload the video again.",
    ErrorCode.NEVER_LAUNCHED: "The transcoding could not be started: upload the video again.",
    ErrorCode.UPLOAD_NOT_ENDED: (
        "The upload was never ended (upload-ended did not come in time): upload it again."
    ),
}


def public_reason(code: str, *, detail: str = "") -> str:
    """The uploader's sentence of ``code``. Only ``source_refused`` carries its detail: those
    reasons are our own words about the media (no frame rate, no duration...)."""
    sentence = PUBLIC_REASONS[ErrorCode(code)]
    return sentence.format(detail=detail) if "{detail}" in sentence else sentence
