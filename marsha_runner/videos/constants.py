"""Every state, pipeline and storage location of a video, in one place."""

import re

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


def storage_location_label(value: str | None) -> str:
    """A location as staff read it everywhere (list, filter, messages): null is the disk."""
    return value or "local disk"


# Storage key layout (docs/design.md#storage-keys): the source upload and the PeerTube outputs
# of one stamp.
SOURCE_DIR = "tmp/{video_id}/video"
SOURCE_KEY = SOURCE_DIR + "/{stamp}"
OUTPUT_PREFIX = "vod/{video_id}/video/{stamp}"
MASTER_PLAYLIST = "master.m3u8"
# "vod/<video id>/video/<stamp>": the only destinations we ever hand to the runners app.
UUID_PATTERN = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
DESTINATION_RE = re.compile(rf"^vod/(?P<video_id>{UUID_PATTERN})/video/(?P<stamp>\d+)$")
# "tmp/<video id>/video/<stamp>": an uploaded source, as the library lists it.
SOURCE_KEY_RE = re.compile(rf"^tmp/(?P<video_id>{UUID_PATTERN})/video/(?P<stamp>\d+)$")
THUMBNAIL = "thumbnail.jpg"

# Legacy AWS MediaConvert outputs, in the AWS bucket (docs/design.md#storage-keys), and their
# home after the migration: the same keys under MIGRATED_PREFIX in the Scaleway bucket.
LEGACY_PREFIX = "{video_id}/"
LEGACY_MANIFEST = "cmaf/{stamp}.m3u8"
LEGACY_MP4 = "mp4/{stamp}_{resolution}.mp4"
LEGACY_THUMBNAIL = "thumbnails/{stamp}_{resolution}.0000000.jpg"
LEGACY_PREVIEW = "previews/{stamp}_100.jpg"
MIGRATED_PREFIX = "aws/"
# A staff transcoding's source still in the AWS bucket: Video.transcode_source starts with this
# mark, and the launch task copies the object into the video storage before it reads it.
LEGACY_SOURCE_MARK = "aws-bucket:"


class SubtitleState(models.TextChoices):
    """A transcription's subtitle track: pending (a runner job) → ready | error."""

    PENDING = "pending", "pending"
    READY = "ready", "ready"
    ERROR = "error", "error"
