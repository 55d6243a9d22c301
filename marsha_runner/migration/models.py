"""Progress of the AWS → Scaleway migration, kept in the database so a rerun resumes and every
worker's progress can be read from one place."""

from django.db import models

from marsha_runner.videos.models import Video


class MigrationObject(models.Model):
    """One legacy object of a video: copied and verified, or not yet.

    A rerun skips what is ``verified``; a video switches to SCALEWAY only when every object
    listed under its prefix is verified. ``upload_id`` is the destination's multipart upload
    of a large object while it is being copied: a rerun continues it (its verified parts are
    ``MigrationPart`` rows) instead of starting over. ``source_deleted`` records
    ``--delete-source``.
    """

    class State(models.TextChoices):
        PENDING = "pending", "pending"
        VERIFIED = "verified", "verified"

    video = models.ForeignKey(Video, on_delete=models.CASCADE, related_name="migration_objects")
    key = models.CharField(max_length=1024, help_text="Key in the legacy bucket.")
    size = models.BigIntegerField()
    source_etag = models.CharField(max_length=80, blank=True, default="")
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    checksum = models.CharField(
        max_length=80, blank=True, default="", help_text="MD5 of the content, both sides."
    )
    upload_id = models.CharField(
        max_length=1024, blank=True, default="", help_text="Multipart upload being resumed."
    )
    error = models.TextField(blank=True, default="")
    verified_on = models.DateTimeField(null=True, blank=True)
    source_deleted = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["video", "key"], name="migration_object_unique_key")
        ]
        indexes = [
            models.Index(fields=["video", "state"]),
            # The progress rate: bytes verified in the last minutes, over all workers.
            models.Index(fields=["verified_on"], name="migration_object_verified_on"),
        ]

    def __str__(self):
        return f"{self.key} ({self.state})"


class MigrationPart(models.Model):
    """A verified part of the multipart upload ``upload_id`` of a large object.

    Written once the destination answered the part with the MD5 we computed from the bytes
    read; a rerun of the same upload sends only the parts missing here.
    """

    object = models.ForeignKey(MigrationObject, on_delete=models.CASCADE, related_name="parts")
    upload_id = models.CharField(max_length=1024)
    number = models.PositiveIntegerField()
    size = models.BigIntegerField()
    md5 = models.CharField(max_length=32)
    etag = models.CharField(max_length=80)
    created_on = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["object", "upload_id", "number"], name="migration_part_unique_number"
            )
        ]

    def __str__(self):
        return f"part {self.number} of {self.object_id}"


class MigrationLock(models.Model):
    """A per-video lease: two runs never migrate the same video at once.

    Renewed while copying; a lease past ``expires_on``, or held by a dead process on this
    host, may be taken over (a run killed with SIGKILL leaves one behind). A run whose renewal
    finds the lease gone stops copying that video.
    """

    video = models.OneToOneField(Video, on_delete=models.CASCADE, primary_key=True)
    owner = models.CharField(max_length=200)
    host = models.CharField(max_length=255)
    pid = models.IntegerField()
    expires_on = models.DateTimeField()

    def __str__(self):
        return f"{self.video_id} locked by {self.owner}"


class MigrationVideo(models.Model):
    """Where one video's migration stands, written by whichever worker runs it.

    ``--status`` and the admin's progress page read these rows: they are the only place that
    sees every worker of a fanned-out migration. Counters are written in batches (with the
    verified objects), never per object.
    """

    class State(models.TextChoices):
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        MIGRATED = "migrated", "migrated"
        FAILED = "failed", "failed"
        STOPPED = "stopped", "stopped"

    video = models.OneToOneField(
        Video, on_delete=models.CASCADE, primary_key=True, related_name="migration"
    )
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    reason = models.TextField(blank=True, default="")
    objects_total = models.IntegerField(default=0)
    objects_done = models.IntegerField(default=0)
    bytes_total = models.BigIntegerField(default=0)
    bytes_done = models.BigIntegerField(default=0)
    worker = models.CharField(max_length=255, blank=True, default="")
    attempts = models.IntegerField(default=0)
    started_on = models.DateTimeField(null=True, blank=True)
    finished_on = models.DateTimeField(null=True, blank=True)
    updated_on = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["state", "updated_on"])]

    def __str__(self):
        return f"{self.video_id} ({self.state})"
