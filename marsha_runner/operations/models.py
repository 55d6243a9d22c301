"""What the watchdog must remember between two runs."""

from django.db import models


class LaunchRecovery(models.Model):
    """Launches the watchdog enqueued again for one upload (a video and its stamp).

    A ``processing`` video without its job tree is the record of a launch we owe (the broker
    was down, the worker lost it); this row only counts the retries, so the watchdog gives up
    with a reason after ``VIDEO_LAUNCH_RECOVERY_MAX_ATTEMPTS`` instead of retrying forever.
    """

    video = models.ForeignKey(
        "videos.Video", on_delete=models.CASCADE, related_name="launch_recoveries"
    )
    stamp = models.BigIntegerField()
    attempts = models.PositiveIntegerField(default=0)
    last_attempt_on = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["video", "stamp"], name="launch_recovery_per_upload")
        ]

    def __str__(self):
        return f"{self.video_id}@{self.stamp}: {self.attempts} attempt(s)"
