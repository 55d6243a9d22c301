"""Progress of the AWS → Scaleway migration, kept in the database so a rerun resumes."""

from django.db import models

from marsha_runner.videos.models import Video


class MigrationObject(models.Model):
    """One legacy object of a video: copied and verified, or not yet.

    A rerun skips what is ``verified``; a video switches to SCALEWAY only when every object
    listed under its prefix is verified. ``source_deleted`` records ``--delete-source``.
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
    error = models.TextField(blank=True, default="")
    verified_on = models.DateTimeField(null=True, blank=True)
    source_deleted = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["video", "key"], name="migration_object_unique_key")
        ]
        indexes = [models.Index(fields=["video", "state"])]

    def __str__(self):
        return f"{self.key} ({self.state})"


class MigrationLock(models.Model):
    """A per-video lease: two runs never migrate the same video at once.

    Renewed while copying; a lease past ``expires_on``, or held by a dead process on this
    host, may be taken over (a run killed with SIGKILL leaves one behind).
    """

    video = models.OneToOneField(Video, on_delete=models.CASCADE, primary_key=True)
    owner = models.CharField(max_length=200)
    host = models.CharField(max_length=255)
    pid = models.IntegerField()
    expires_on = models.DateTimeField()

    def __str__(self):
        return f"{self.video_id} locked by {self.owner}"
