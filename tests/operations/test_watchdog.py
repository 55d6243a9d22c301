"""runners_watchdog: each repair, --dry-run changes nothing, --json parses, a second run does
nothing, exit 2 only when something failed for good."""

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from django_peertube_runner_connector.models import Runner, RunnerJob, RunnerJobState

from marsha_runner.operations.models import LaunchRecovery
from marsha_runner.videos.constants import UploadState
from marsha_runner.videos.models import Video
from tests.factories import VideoFactory
from tests.runners.factories import job_tree, job_tree_finish, runner_make

pytestmark = pytest.mark.django_db

STAMP = 1767261600


def watchdog(*args) -> tuple[dict, int]:
    """Run the command with --json; (summary, exit code)."""
    out = StringIO()
    try:
        call_command("runners_watchdog", "--json", *args, stdout=out)
        code = 0
    except CommandError as err:
        code = err.returncode
    return json.loads(out.getvalue()), code


def processing_video_with_tree(resolutions=(720, 360), stamp=STAMP):
    video = VideoFactory(
        upload_state=UploadState.PROCESSING, processing_stamp=stamp, launched_stamp=stamp
    )
    transcoded, parent, children = job_tree(
        resolutions=resolutions, directory=video.output_prefix(stamp)
    )
    return video, transcoded, parent, children


def accept(job, runner_name="runner-a", minutes_ago=120, failures=0):
    """``job`` processing by a runner, last touched ``minutes_ago``."""
    runner_make(runner_name)
    runner = Runner.objects.get(name=runner_name)
    RunnerJob.objects.filter(pk=job.pk).update(
        state=RunnerJobState.PROCESSING,
        runner=runner,
        processingJobToken="ptrjt-x",
        failures=failures,
        updatedAt=timezone.now() - timedelta(minutes=minutes_ago),
    )
    job.refresh_from_db()
    return job


def rows():
    """Every job row and video row, to prove a run left them unchanged."""
    return (
        list(RunnerJob.objects.order_by("pk").values()),
        list(Video.objects.order_by("pk").values()),
    )


def test_a_stalled_job_goes_back_to_pending_with_one_more_failure(
    settings, django_capture_on_commit_callbacks, monkeypatch
):
    pings = []
    monkeypatch.setattr("marsha_runner.runners.socket.runners_ping", lambda: pings.append(1))
    settings.RUNNERS_STALLED_JOB_TIMEOUT = 600
    video, _, parent, children = processing_video_with_tree()
    accept(parent, minutes_ago=20)
    fresh_video, _, fresh_parent, _ = processing_video_with_tree(stamp=STAMP + 1)
    accept(fresh_parent, runner_name="runner-b", minutes_ago=5)  # within the timeout

    before = rows()
    summary, code = watchdog("--dry-run")
    assert (summary["dry_run"], code) == (True, 0)
    assert summary["counts"] == {"stalled_jobs_requeued": 1}
    assert rows() == before

    with django_capture_on_commit_callbacks(execute=True):
        summary, code = watchdog()
    assert code == 0
    assert summary["counts"] == {"stalled_jobs_requeued": 1}
    assert summary["items"]["stalled_jobs_requeued"][0]["uuid"] == str(parent.uuid)
    parent.refresh_from_db()
    assert (parent.state, parent.failures, parent.processingJobToken) == (
        RunnerJobState.PENDING,
        1,
        None,
    )
    assert pings, "runners are pinged when a job is requeued"
    fresh_parent.refresh_from_db()
    assert fresh_parent.state == RunnerJobState.PROCESSING
    video.refresh_from_db()
    assert video.upload_state == UploadState.PROCESSING

    again = rows()
    summary, code = watchdog()
    assert (summary["counts"], code) == ({}, 0)
    assert rows() == again


def test_a_job_left_completing_by_a_killed_process_goes_back_to_pending(settings):
    """``runner_job_succeed`` moves the job to completing before the completion's I/O: a
    process killed then leaves it there, and only the watchdog can take it back."""
    settings.RUNNERS_STALLED_JOB_TIMEOUT = 600
    video, _, parent, _ = processing_video_with_tree()
    accept(parent, minutes_ago=20)
    RunnerJob.objects.filter(pk=parent.pk).update(state=RunnerJobState.COMPLETING)
    _, _, recent, _ = processing_video_with_tree(stamp=STAMP + 1)
    accept(recent, runner_name="runner-b", minutes_ago=5)
    RunnerJob.objects.filter(pk=recent.pk).update(state=RunnerJobState.COMPLETING)

    summary, code = watchdog()
    assert (summary["counts"], code) == ({"stalled_jobs_requeued": 1}, 0)
    parent.refresh_from_db()
    assert (parent.state, parent.failures) == (RunnerJobState.PENDING, 1)
    recent.refresh_from_db()
    assert recent.state == RunnerJobState.COMPLETING  # within the timeout: still its own


def test_a_stalled_job_at_the_max_failures_errors_its_tree_and_video_once(
    settings, django_capture_on_commit_callbacks
):
    settings.TRANSCODING_RUNNER_MAX_FAILURE = 3
    video, _, parent, children = processing_video_with_tree()
    accept(parent, failures=2)

    summary, code = watchdog("--dry-run")
    assert (summary["counts"], code) == ({"stalled_jobs_errored": 1}, 2)
    parent.refresh_from_db()
    assert parent.state == RunnerJobState.PROCESSING

    with django_capture_on_commit_callbacks(execute=True):
        summary, code = watchdog()
    assert code == 2, "an errored job needs a human"
    # Under the test's transaction the host callback waits for the end of the block, so the
    # watchdog's own completion step may apply it first: either way, once.
    assert summary["counts"]["stalled_jobs_errored"] == 1
    assert summary["needs_attention"] == [f"runner job {parent.uuid} errored for good"]
    parent.refresh_from_db()
    assert (parent.state, parent.failures) == (RunnerJobState.ERRORED, 3)
    assert "stalled" in parent.error
    for child in children:
        child.refresh_from_db()
        assert child.state == RunnerJobState.PARENT_ERRORED
    video.refresh_from_db()
    assert video.upload_state == UploadState.ERROR
    assert video.upload_error_code == "transcoding_failed"
    assert "stalled" in video.upload_error_detail
    first_reason = video.upload_error_detail

    with django_capture_on_commit_callbacks(execute=True):
        summary, code = watchdog()
    assert (summary["counts"], code) == ({}, 0)
    video.refresh_from_db()
    assert video.upload_error_detail == first_reason


def test_the_job_of_an_unregistered_runner_is_requeued_without_a_failure(
    django_capture_on_commit_callbacks,
):
    _, _, parent, _ = processing_video_with_tree()
    accept(parent, minutes_ago=0)
    Runner.objects.filter(name="runner-a").delete()  # unregister: the library nulls job.runner

    summary, _ = watchdog("--dry-run")
    assert summary["counts"] == {"orphaned_jobs_requeued": 1}
    with django_capture_on_commit_callbacks(execute=True):
        summary, code = watchdog()
    assert (summary["counts"], code) == ({"orphaned_jobs_requeued": 1}, 0)
    parent.refresh_from_db()
    assert (parent.state, parent.failures) == (RunnerJobState.PENDING, 0)
    assert watchdog()[0]["counts"] == {}


def test_children_left_under_an_errored_parent_are_parent_errored(
    django_capture_on_commit_callbacks,
):
    video, _, parent, children = processing_video_with_tree(resolutions=(720, 480, 360))
    RunnerJob.objects.filter(pk=parent.pk).update(state=RunnerJobState.ERRORED, error="boom")
    # The library's bug (docs/design.md#failed-parents): a child back to pending.
    RunnerJob.objects.filter(pk=children[0].pk).update(state=RunnerJobState.PENDING)

    summary, _ = watchdog("--dry-run")
    assert summary["counts"] == {"stranded_jobs_parent_errored": 2}
    with django_capture_on_commit_callbacks(execute=True):
        summary, code = watchdog()
    assert summary["counts"]["stranded_jobs_parent_errored"] == 2
    assert code == 0
    states = set(RunnerJob.objects.filter(dependsOnRunnerJob=parent).values_list("state"))
    assert states == {(RunnerJobState.PARENT_ERRORED,)}
    video.refresh_from_db()
    assert video.upload_state == UploadState.ERROR  # the tree is over: completion applied
    assert watchdog()[0]["counts"] == {}


def test_a_finished_tree_whose_callback_never_came_gets_its_completion_once():
    video, transcoded, parent, children = processing_video_with_tree()
    job_tree_finish(video=transcoded, jobs=[parent, *children])
    storage = storages["videos"]
    storage.save(video.master_playlist_key(STAMP), ContentFile(b"#EXTM3U\n"))
    for resolution in (720, 360):
        storage.save(video.rendition_playlist_key(STAMP, resolution), ContentFile(b"#EXTM3U\n"))
        storage.save(video.rendition_video_key(STAMP, resolution), ContentFile(b"mp4"))

    summary, _ = watchdog("--dry-run")
    assert summary["counts"] == {"completions_applied": 1}
    video.refresh_from_db()
    assert video.upload_state == UploadState.PROCESSING

    summary, code = watchdog()
    assert (summary["counts"], code) == ({"completions_applied": 1}, 0)
    assert summary["items"]["completions_applied"] == [
        {"video": str(video.id), "state": UploadState.READY}
    ]
    video.refresh_from_db()
    assert (video.upload_state, video.resolutions) == (UploadState.READY, [360, 720])
    assert watchdog()[0]["counts"] == {}


def test_a_tree_still_running_is_left_alone():
    _, _, parent, _ = processing_video_with_tree()
    accept(parent, minutes_ago=0)
    before = rows()
    assert watchdog() == ({"command": "runners_watchdog", "counts": {}, "dry_run": False,
                           "items": {}, "needs_attention": []}, 0)  # fmt: skip
    assert rows() == before


def lost_launch(settings, *, seconds_ago=600):
    settings.VIDEO_LAUNCH_RECOVERY_DELAY = 300
    video = VideoFactory(upload_state=UploadState.PROCESSING, processing_stamp=STAMP)
    Video.objects.filter(pk=video.pk).update(
        updated_on=timezone.now() - timedelta(seconds=seconds_ago)
    )
    return video


def test_a_lost_launch_is_enqueued_again_then_given_up_after_the_max_attempts(
    settings, monkeypatch
):
    enqueued = []
    monkeypatch.setattr(
        "marsha_runner.videos.launch.video_launch_enqueue",
        lambda **kw: enqueued.append(kw) or True,
    )  # the real enqueue is covered by the broker tests; here: what the watchdog decides
    settings.VIDEO_LAUNCH_RECOVERY_MAX_ATTEMPTS = 2
    video = lost_launch(settings)
    recent = lost_launch(settings, seconds_ago=10)  # upload-ended just now: not yet

    summary, _ = watchdog("--dry-run")
    assert summary["counts"] == {"launches_enqueued": 1}
    assert (enqueued, LaunchRecovery.objects.count()) == ([], 0)

    summary, code = watchdog()
    assert (summary["counts"], code) == ({"launches_enqueued": 1}, 0)
    assert enqueued == [{"video_id": video.id, "stamp": STAMP, "staff": False}]
    assert watchdog()[0]["counts"] == {}, "no second enqueue within the delay"

    # Each later run past the delay is one more attempt, then the video is errored once.
    LaunchRecovery.objects.update(last_attempt_on=timezone.now() - timedelta(seconds=301))
    assert watchdog()[0]["counts"] == {"launches_enqueued": 1}
    LaunchRecovery.objects.update(last_attempt_on=timezone.now() - timedelta(seconds=301))
    summary, code = watchdog()
    assert (summary["counts"], code) == ({"launches_given_up": 1}, 2)
    video.refresh_from_db()
    assert video.upload_state == UploadState.ERROR
    assert video.upload_error_code == "never_launched"
    assert video.upload_error_detail == "The transcoding was never launched (2 attempts)."
    assert len(enqueued) == 2
    assert watchdog()[0]["counts"] == {}
    recent.refresh_from_db()
    assert recent.upload_state == UploadState.PROCESSING


def test_text_output_and_bad_batch_size():
    out = StringIO()
    call_command("runners_watchdog", "--dry-run", stdout=out)
    assert "nothing to do" in out.getvalue()
    with pytest.raises(CommandError, match=r"^--batch-size must be at least 1\.$") as raised:
        call_command("runners_watchdog", "--batch-size", "0")
    assert raised.value.returncode == 1
