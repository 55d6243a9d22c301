"""Proxies of the library's models: the staff admin's "Transcoding" section and its permissions.

The library's tables stay the library's; these proxies give them names from our domain (its
Video is the *transcoded video*) and the custom permissions each staff action requires.
"""

from django_peertube_runner_connector import models as library


class RunnerRegistrationToken(library.RunnerRegistrationToken):
    class Meta:
        proxy = True
        verbose_name = "registration token"
        permissions = [
            ("generate_runnerregistrationtoken", "Can generate a registration token"),
            ("revoke_runnerregistrationtoken", "Can revoke a registration token"),
        ]


class Runner(library.Runner):
    class Meta:
        proxy = True
        verbose_name = "runner"
        permissions = [("unregister_runner", "Can unregister a runner")]


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


class TranscodedVideo(library.Video):
    class Meta:
        proxy = True
        verbose_name = "transcoded video"


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
