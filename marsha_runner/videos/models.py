"""The Video: ours, not the library's (the library's own Video is the *transcoded video*)."""

import uuid
from datetime import UTC, datetime

from django.db import models

from . import constants
from .constants import StorageLocation, TranscodePipeline, UploadState


class Video(models.Model):
    """A video a client uploads and watches.

    Two stamps live side by side: ``uploaded_on`` is the stamp of the *active* version (the one
    ``urls`` serves), ``processing_stamp`` the last stamp issued to an upload. A ready video
    that is uploaded again keeps serving its active version until the new one is complete.

    A first upload is served as soon as its first rendition is stored (issue 18): it stays
    ``processing`` with ``playable_on`` set, ``resolutions`` and ``urls`` listing the stored
    renditions, until the whole ladder is stored and it becomes ``ready``.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    title = models.CharField(max_length=255)
    upload_state = models.CharField(
        max_length=20, choices=UploadState.choices, default=UploadState.PENDING, db_index=True
    )
    upload_error_reason = models.TextField(
        blank=True, default="", help_text="Why it is in error, for the uploader (public)."
    )
    # db_default too: rows written by SQL (benches, imports) need no value.
    upload_error_code = models.CharField(
        max_length=40,
        blank=True,
        default="",
        db_default="",
        help_text="Stable code of the error (public).",
    )
    upload_error_detail = models.TextField(
        blank=True,
        default="",
        db_default="",
        help_text="What happened, for staff only: tool output, runner message, keys.",
    )
    uploaded_on = models.DateTimeField(
        null=True, blank=True, help_text="Stamp of the active (served) version."
    )
    processing_stamp = models.BigIntegerField(
        null=True,
        blank=True,
        help_text="Unix time of the last upload issued (the pending or processing version).",
    )
    launched_stamp = models.BigIntegerField(
        null=True,
        blank=True,
        help_text="Stamp whose runner job tree exists (a redelivered launch makes no second).",
    )
    # null = not transcoded yet / local filesystem, as in Marsha (docs/design.md#storage-keys).
    transcode_pipeline = models.CharField(  # noqa: DJ001
        max_length=20, choices=TranscodePipeline.choices, null=True, blank=True
    )
    storage_location = models.CharField(  # noqa: DJ001
        max_length=20, choices=StorageLocation.choices, null=True, blank=True
    )
    resolutions = models.JSONField(default=list, blank=True, help_text="Sorted heights.")
    duration = models.FloatField(null=True, blank=True, help_text="Seconds.")
    size = models.BigIntegerField(null=True, blank=True, help_text="Source size in bytes.")
    launch_refused_on = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the broker refused the launch of the processing stamp (an outage): "
        "runners_watchdog enqueues it again at its next run.",
    )
    upload_declared_size = models.BigIntegerField(
        null=True,
        blank=True,
        help_text="Size in bytes the client declared for the pending upload (it must match).",
    )
    urls = models.JSONField(null=True, blank=True, help_text="Persisted URLs of the version.")
    transcode_source = models.CharField(
        max_length=1024,
        blank=True,
        default="",
        help_text="What the launch of the processing version reads when it is not its own "
        "upload (staff actions): a key of the video storage, read where it is, or a legacy "
        "mp4 of the AWS bucket (marked), copied by the launch task.",
    )
    processing_by_staff = models.BooleanField(
        default=False,
        help_text="The processing version was asked by staff (re-trigger, switch, missing "
        "renditions): its launch and runner jobs come after every user upload's.",
    )
    upload_ended_on = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the processing version's upload ended (its transcoding's start): the "
        "upload-ended → playable and → ready times are measured from it.",
    )
    playable_on = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the served version became playable (its first rendition stored).",
    )
    created_on = models.DateTimeField(auto_now_add=True)
    updated_on = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_on"]
        # One index behind the default ordering and each admin filter with that ordering.
        indexes = [
            models.Index(fields=["-created_on"], name="video_created"),
            models.Index(fields=["upload_state", "-created_on"], name="video_state_created"),
            models.Index(
                fields=["transcode_pipeline", "-created_on"], name="video_pipeline_created"
            ),
            models.Index(
                fields=["storage_location", "-created_on"], name="video_location_created"
            ),
            models.Index(
                fields=["-created_on"],
                name="video_has_error_created",
                condition=~models.Q(upload_error_reason=""),
            ),
        ]
        # Each staff action requires its own permission (the admin checks them).
        permissions = [
            ("retranscode_video", "Can re-trigger the transcoding of a video"),
            ("switch_pipeline_video", "Can switch a legacy video to the PEERTUBE pipeline"),
            ("transcode_missing_video", "Can transcode the missing renditions of a video"),
            ("migrate_video", "Can migrate a video's storage to Scaleway"),
            ("transcribe_video", "Can transcribe a video"),
        ]

    def __str__(self):
        return f"{self.title} ({self.upload_state})"

    @property
    def playable(self) -> bool:
        """A version is served: the first rendition of a first upload is stored (issue 18), or
        a complete version is (a ready video, or one whose new version is processing)."""
        return self.uploaded_on is not None and bool(self.urls)

    @property
    def active_stamp(self) -> int | None:
        """The stamp of the served version, as issued (an int of Unix time)."""
        return int(self.uploaded_on.timestamp()) if self.uploaded_on else None

    @staticmethod
    def stamp_to_datetime(stamp: int) -> datetime:
        return datetime.fromtimestamp(int(stamp), tz=UTC)

    # Storage keys: one method per kind of key, nowhere else builds them.

    def source_dir(self) -> str:
        """The folder of every uploaded source of this video: ``tmp/<id>/video``."""
        return constants.SOURCE_DIR.format(video_id=self.id)

    def source_key(self, stamp: int) -> str:
        """The uploaded source: ``tmp/<id>/video/<stamp>`` (no extension)."""
        return constants.SOURCE_KEY.format(video_id=self.id, stamp=int(stamp))

    def output_prefix(self, stamp: int) -> str:
        """Directory of the PeerTube outputs of one version: ``vod/<id>/video/<stamp>``."""
        return constants.OUTPUT_PREFIX.format(video_id=self.id, stamp=int(stamp))

    def outputs_root(self) -> str:
        """``vod/<id>/video/``: the folder above every transcoded version of this video."""
        return constants.OUTPUT_PREFIX.split("{stamp}", 1)[0].format(video_id=self.id)

    def master_playlist_key(self, stamp: int) -> str:
        return f"{self.output_prefix(stamp)}/{constants.MASTER_PLAYLIST}"

    def rendition_video_key(self, stamp: int, resolution: int) -> str:
        """The fragmented mp4 of one rendition: HLS byte ranges and the mp4 download."""
        return f"{self.output_prefix(stamp)}/{int(stamp)}-{int(resolution)}-fragmented.mp4"

    def rendition_playlist_key(self, stamp: int, resolution: int) -> str:
        return f"{self.output_prefix(stamp)}/{int(stamp)}-{int(resolution)}.m3u8"

    def thumbnail_key(self, stamp: int) -> str:
        return f"{self.output_prefix(stamp)}/{constants.THUMBNAIL}"

    # Legacy AWS outputs, relative to the bucket that holds them: the AWS bucket as is, or the
    # Scaleway bucket under ``migrated_key`` once migrated.

    def legacy_prefix(self) -> str:
        """Every legacy object of this video lives under ``<id>/``."""
        return constants.LEGACY_PREFIX.format(video_id=self.id)

    def legacy_manifest_key(self, stamp: int) -> str:
        return self.legacy_prefix() + constants.LEGACY_MANIFEST.format(stamp=int(stamp))

    def legacy_mp4_key(self, stamp: int, resolution: int) -> str:
        return self.legacy_prefix() + constants.LEGACY_MP4.format(
            stamp=int(stamp), resolution=int(resolution)
        )

    def legacy_thumbnail_key(self, stamp: int, resolution: int) -> str:
        return self.legacy_prefix() + constants.LEGACY_THUMBNAIL.format(
            stamp=int(stamp), resolution=int(resolution)
        )

    def legacy_preview_key(self, stamp: int) -> str:
        return self.legacy_prefix() + constants.LEGACY_PREVIEW.format(stamp=int(stamp))

    @staticmethod
    def migrated_key(legacy_key: str) -> str:
        """Where a legacy object lives in the Scaleway bucket: ``aws/<legacy key>``."""
        return constants.MIGRATED_PREFIX + legacy_key


class SubtitleTrack(models.Model):
    """The transcript of one version of a video (a WebVTT file), made by a runner's whisper.

    One row per transcription job: ``pending`` while the job runs, then ``ready`` with its
    language and key (its URL goes into the video's ``urls["subtitles"]``), or ``error`` with
    the reason. Only the first outcome of a job changes the row.
    """

    video = models.ForeignKey(Video, on_delete=models.CASCADE, related_name="subtitle_tracks")
    stamp = models.BigIntegerField(help_text="The version transcribed (its upload stamp).")
    job_uuid = models.UUIDField(unique=True, help_text="The runner job making it.")
    state = models.CharField(
        max_length=20, choices=constants.SubtitleState.choices, default="pending"
    )
    language = models.CharField(max_length=20, blank=True, default="")
    key = models.CharField(max_length=1024, blank=True, default="", help_text="Storage key.")
    error_reason = models.TextField(blank=True, default="")
    created_on = models.DateTimeField(auto_now_add=True)
    updated_on = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_on"]
        # The staff list: its default ordering and each filter with it.
        indexes = [
            models.Index(fields=["-created_on"], name="subtitle_created"),
            models.Index(fields=["state", "-created_on"], name="subtitle_state_created"),
            models.Index(fields=["language", "-created_on"], name="subtitle_language_created"),
        ]

    def __str__(self):
        return f"{self.video_id}@{self.stamp} {self.language or '?'} ({self.state})"
