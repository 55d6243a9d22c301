"""A staff requeue of an errored job whose video is in error (issue 15, point 4).

Before: the admin said "requeued", then the job failed five times on "the source file is gone"
and the video kept its old reason. Now the requeue moves the video back to ``processing``, or
is refused with the reason and the way out (Re-trigger), changing nothing.
"""

import pytest
from django.utils import timezone
from django_peertube_runner_connector.models import RunnerJobState
from django_peertube_runner_connector.storage import video_storage

from marsha_runner.runners import staff
from marsha_runner.runners.models import RunnerJob
from marsha_runner.videos.constants import UploadState
from marsha_runner.videos.models import Video
from tests.factories import VideoFactory
from tests.runners.factories import job_tree, snapshot

pytestmark = pytest.mark.django_db
STAMP = 1700000000


def _errored_world():
    """Our video in error for its launched stamp; its tree: parent errored, child
    parent-errored; the upload still in storage."""
    video = VideoFactory(
        upload_state=UploadState.ERROR,
        upload_error_reason="Transcoding errored: boom",
        processing_stamp=STAMP,
        launched_stamp=STAMP,
    )
    _transcoded, parent, children = job_tree(directory=video.output_prefix(STAMP))
    RunnerJob.objects.filter(pk=parent.pk).update(
        state=RunnerJobState.ERRORED, failures=5, error="boom", finishedAt=timezone.now()
    )
    RunnerJob.objects.filter(pk=children[0].pk).update(state=RunnerJobState.PARENT_ERRORED)
    return video, RunnerJob.objects.get(pk=parent.pk), children


def test_requeue_moves_an_errored_video_back_to_processing(django_capture_on_commit_callbacks):
    video, parent, children = _errored_world()
    with django_capture_on_commit_callbacks(execute=True):
        said = staff.runner_job_requeue(job=parent)
    assert said == (
        "requeued (errored), 1 dependent job(s) waiting for it; runners pinged; "
        "its video is back to processing"
    )
    video.refresh_from_db()
    assert (video.upload_state, video.upload_error_reason) == (UploadState.PROCESSING, "")
    parent.refresh_from_db()
    assert (parent.state, parent.failures) == (RunnerJobState.PENDING, 0)
    child = RunnerJob.objects.get(pk=children[0].pk)
    assert child.state == RunnerJobState.WAITING_FOR_PARENT_JOB


def test_a_dry_run_says_so_and_changes_nothing():
    video, parent, _children = _errored_world()
    before = snapshot(parent)
    said = staff.runner_job_requeue(job=parent, dry_run=True)
    assert said == (
        "will be requeued (errored), with 1 dependent job(s); its video goes back to processing"
    )
    assert Video.objects.get(pk=video.pk).upload_state == UploadState.ERROR
    assert snapshot(parent) == before


def test_refused_when_the_source_is_gone_pointing_to_retrigger():
    video, parent, _children = _errored_world()
    video_storage.delete(video.source_key(STAMP))
    before = snapshot(parent)
    with pytest.raises(staff.StaffRefused, match=r"its source is gone .*use Re-trigger"):
        staff.runner_job_requeue(job=parent)
    assert snapshot(parent) == before
    assert Video.objects.get(pk=video.pk).upload_state == UploadState.ERROR


def test_refused_when_the_video_has_a_newer_upload():
    video, parent, _children = _errored_world()
    Video.objects.filter(pk=video.pk).update(
        processing_stamp=STAMP + 5, upload_state=UploadState.PENDING
    )
    before = snapshot(parent)
    with pytest.raises(staff.StaffRefused, match="newer upload since: use Re-trigger"):
        staff.runner_job_requeue(job=parent)
    assert snapshot(parent) == before
    assert Video.objects.get(pk=video.pk).upload_state == UploadState.PENDING


def test_refused_when_the_video_is_ready():
    video, parent, _children = _errored_world()
    Video.objects.filter(pk=video.pk).update(upload_state=UploadState.READY)
    before = snapshot(parent)
    with pytest.raises(staff.StaffRefused, match="its video is ready: use Re-trigger"):
        staff.runner_job_requeue(job=parent)
    assert snapshot(parent) == before
