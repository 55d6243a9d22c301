"""Runner job trees and runners for the runner API tests (no ffmpeg needed)."""

from django_peertube_runner_connector.models import RunnerJob, Video, VideoFile

from marsha_runner.runners.handlers import HLSTranscodingJobHandler
from marsha_runner.runners.services import runner_seed

REGISTRATION_TOKEN = "ptrrt-tests"


def runner_make(name: str) -> str:
    """A pre-registered runner; returns its token."""
    token = f"ptrt-{name}"
    runner_seed(registration_token=REGISTRATION_TOKEN, runner_name=name, runner_token=token)
    return token


def job_tree(*, domain="http://testserver", resolutions=(720, 360)):
    """A transcoded video with a source file, a parent job and waiting children."""
    video = Video.objects.create(state=2, directory="vod/abc/video/1", baseFilename="1")
    VideoFile.objects.create(
        video=video, filename="tmp/abc/video/1", extname="", size=10, resolution=720, fps=30
    )
    handler = HLSTranscodingJobHandler()
    top, *lower = resolutions
    parent = handler.create(
        video=video, resolution=top, fps=30, depends_on_runner_job=None, domain=domain
    )
    children = [
        handler.create(
            video=video, resolution=r, fps=30, depends_on_runner_job=parent, domain=domain
        )
        for r in lower
    ]
    return video, parent, children


def snapshot(job: RunnerJob) -> dict:
    """Every column of the job row, as stored."""
    return RunnerJob.objects.filter(pk=job.pk).values().get()
