"""Proxies of the library's models: the staff admin's "Transcoding" section and its permissions.

The library's tables stay the library's; these proxies give them names from our domain (its
Video is the *transcoded video*) and the custom permissions each staff action requires.
"""

from django.db import models
from django_peertube_runner_connector import models as library

from .naming import runner_job_name, token_prefix


class RunnerRegistrationToken(library.RunnerRegistrationToken):
    class Meta:
        proxy = True
        verbose_name = "registration token"
        permissions = [
            ("generate_runnerregistrationtoken", "Can generate a registration token"),
            ("revoke_runnerregistrationtoken", "Can revoke a registration token"),
            (
                "reveal_runnerregistrationtoken",
                "Can read a registration token's value (it registers runners)",
            ),
        ]

    def __str__(self):
        created = f" ({self.createdAt:%Y-%m-%d})" if self.createdAt else ""
        return f"{token_prefix(self.registrationToken)}{created}"


class Runner(library.Runner):
    class Meta:
        proxy = True
        verbose_name = "runner"
        permissions = [("unregister_runner", "Can unregister a runner")]

    def __str__(self):
        return self.name


class RunnerJob(library.RunnerJob):
    class Meta:
        proxy = True
        verbose_name = "runner job"
        permissions = [
            ("cancel_runnerjob", "Can cancel a runner job"),
            ("requeue_runnerjob", "Can requeue a runner job"),
            ("ping_runners", "Can ping the runners"),
            ("purge_runnerjob", "Can delete finished runner jobs"),
        ]

    def __str__(self):
        # ``video_title``: set in bulk by the admin (runner_jobs_titles), never a query here.
        return runner_job_name(self, title=getattr(self, "video_title", None))


class TranscodedVideo(library.Video):
    class Meta:
        proxy = True
        verbose_name = "transcoded video"

    def __str__(self):
        return getattr(self, "video_title", None) or self.directory


class TranscodedFile(library.VideoFile):
    class Meta:
        proxy = True
        verbose_name = "transcoded file"


class TranscodedPlaylist(library.VideoStreamingPlaylist):
    class Meta:
        proxy = True
        verbose_name = "transcoded playlist"


class TranscodingJobInfo(library.VideoJobInfo):
    class Meta:
        proxy = True
        verbose_name = "transcoding job info"


class RunnerJobFailure(models.Model):
    """One failure of a runner job, kept (the library keeps only the last message, and a
    requeue clears it): when, which runner, what it said. Written where failures are counted
    (``failures.runner_job_failure_record``, abort); read by the job's admin page."""

    job_uuid = models.UUIDField(db_index=True)
    runner_name = models.CharField(max_length=255, blank=True, default="")
    message = models.TextField(blank=True, default="")
    failed_on = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["failed_on", "pk"]
        default_permissions = ()

    def __str__(self):
        return f"{self.job_uuid} {self.failed_on:%Y-%m-%d %H:%M:%S}"
