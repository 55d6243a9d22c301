"""Every state, pipeline and storage location of a video, in one place."""

from django.db import models


class UploadState(models.TextChoices):
    """Where a video is in its life: pending → processing → ready | error."""

    PENDING = "pending", "pending"
    PROCESSING = "processing", "processing"
    READY = "ready", "ready"
    ERROR = "error", "error"


class TranscodePipeline(models.TextChoices):
    """Who transcoded the active version: legacy AWS MediaConvert or PeerTube runners."""

    AWS = "AWS", "AWS"
    PEERTUBE = "PEERTUBE", "PEERTUBE"


class StorageLocation(models.TextChoices):
    """Which bucket holds the active version; null means the local filesystem (dev, tests)."""

    AWS = "AWS", "AWS"
    SCALEWAY = "SCALEWAY", "SCALEWAY"


# Storage key layout (DESIGN §4): the source upload and the PeerTube outputs of one stamp.
SOURCE_KEY = "tmp/{video_id}/video/{stamp}"
OUTPUT_PREFIX = "vod/{video_id}/video/{stamp}"
MASTER_PLAYLIST = "master.m3u8"
THUMBNAIL = "thumbnail.jpg"
