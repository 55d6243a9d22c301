"""The host hears of a transcoding once: one conditional UPDATE decides who tells it."""

import json
import multiprocessing
import os

import pytest
from django.db import connections
from django_peertube_runner_connector.models import RunnerJob, RunnerJobState, Video, VideoState

from marsha_runner.runners import callbacks
from marsha_runner.runners.handlers import HLSTranscodingJobHandler
from tests.runners.factories import job_tree, job_tree_finish, query_plan, rendition_complete
from tests.runners.media import OUTCOMES, hls_rendition

OUTCOMES_FILE = "MARSHA_TEST_OUTCOMES_FILE"


def record_outcome_to_file(*, outcome):
    """The host callback of the two-process test: each call is one line, from any process."""
    with open(os.environ[OUTCOMES_FILE], "a") as handle:
        handle.write(json.dumps({"pid": os.getpid(), "succeeded": outcome.succeeded}) + "\n")


@pytest.mark.ffmpeg
@pytest.mark.django_db
def test_three_renditions_and_the_library_callback_notify_once(
    videos_root, tmp_path, settings, django_capture_on_commit_callbacks
):
    settings.RUNNERS_TRANSCODING_ENDED_CALLBACK = "tests.runners.media.record_outcome"
    OUTCOMES.clear()
    video, parent, children = job_tree(resolutions=(240, 240, 240))
    for job in (parent, *children):
        mp4, m3u8 = hls_rendition(tmp_path)
        with django_capture_on_commit_callbacks(execute=True):
            rendition_complete(job, mp4, m3u8)
            callbacks.library_transcoding_ended(video)  # the library's callback, as it fires
    assert len(OUTCOMES) == 1 and OUTCOMES[0].succeeded
    video.refresh_from_db()
    assert video.state == VideoState.PUBLISHED

    with django_capture_on_commit_callbacks(execute=True):
        callbacks.transcoding_ended_notify(video_uuid=video.uuid)  # a late caller
    assert len(OUTCOMES) == 1


@pytest.mark.django_db
def test_a_failed_transcoding_notifies_once(settings, django_capture_on_commit_callbacks):
    settings.RUNNERS_TRANSCODING_ENDED_CALLBACK = "tests.runners.media.record_outcome"
    settings.TRANSCODING_RUNNER_MAX_FAILURE = 1
    OUTCOMES.clear()
    video, parent, children = job_tree()
    RunnerJob.objects.filter(pk=parent.pk).update(failures=1, state=RunnerJobState.PROCESSING)
    parent.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        HLSTranscodingJobHandler().error(parent, "broken")
        callbacks.library_transcoding_ended(video)
    assert [o.succeeded for o in OUTCOMES] == [False]
    video.refresh_from_db()
    assert video.state == VideoState.TRANSCODING_FAILED


def _complete_in_child(job_pk, mp4, m3u8, barrier):
    """One rendition's success in its own process and connection; waits, after its commit,
    until the other process has committed too, so both see the whole tree finished."""
    real = callbacks._host_notify

    def after_both_commits(video_uuid):
        barrier.wait()
        real(video_uuid)

    callbacks._host_notify = after_both_commits
    try:
        rendition_complete(RunnerJob.objects.get(pk=job_pk), mp4, m3u8)
    finally:
        _connections_drop()


def _connections_drop():
    """Close every connection and the psycopg pool, so a forked process shares no socket."""
    for connection in connections.all():
        connection.close()
        if hasattr(connection, "close_pool"):
            connection.close_pool()


@pytest.mark.postgres
@pytest.mark.ffmpeg
@pytest.mark.django_db(transaction=True)
def test_two_renditions_completing_at_once_in_two_processes_notify_once(
    videos_root, tmp_path, settings, monkeypatch
):
    outcomes = tmp_path / "outcomes.jsonl"
    outcomes.touch()
    monkeypatch.setenv(OUTCOMES_FILE, str(outcomes))
    settings.RUNNERS_TRANSCODING_ENDED_CALLBACK = (
        "tests.runners.test_completion_once.record_outcome_to_file"
    )
    video, parent, children = job_tree(resolutions=(480, 360, 240))
    job_tree_finish(video=video, jobs=[parent])  # the parent is done; two children remain
    RunnerJob.objects.filter(pk__in=[c.pk for c in children]).update(
        state=RunnerJobState.PROCESSING
    )
    renditions = [hls_rendition(tmp_path) for _ in children]

    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(2, timeout=60)
    _connections_drop()  # each child opens its own connection
    workers = [
        context.Process(target=_complete_in_child, args=(child.pk, mp4, m3u8, barrier))
        for child, (mp4, m3u8) in zip(children, renditions, strict=True)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert [w.exitcode for w in workers] == [0, 0]

    assert set(RunnerJob.objects.values_list("state", flat=True)) == {RunnerJobState.COMPLETED}
    calls = [json.loads(line) for line in outcomes.read_text().splitlines()]
    assert len(calls) == 1, calls  # both processes saw the tree finished; one told the host
    assert calls[0]["succeeded"] is True
    assert Video.objects.get(pk=video.pk).state == VideoState.PUBLISHED


@pytest.mark.django_db
def test_a_videos_jobs_are_found_by_index():
    """The selector's expression is the one migration 0005 indexes (no scan per completion)."""
    import uuid

    from marsha_runner.runners.selectors import runner_jobs_of_video

    video, parent, children = job_tree()
    assert set(runner_jobs_of_video(video_uuid=video.uuid)) == {parent, *children}
    assert not runner_jobs_of_video(video_uuid=uuid.uuid4()).exists()

    plan = query_plan(runner_jobs_of_video(video_uuid=video.uuid))
    assert "runners_runnerjob_video_uuid_text" in plan, plan


@pytest.mark.django_db
def test_a_requeued_job_gets_its_next_outcome_told(settings, django_capture_on_commit_callbacks):
    from marsha_runner.runners.staff import runner_job_requeue

    settings.RUNNERS_TRANSCODING_ENDED_CALLBACK = "tests.runners.media.record_outcome"
    settings.TRANSCODING_RUNNER_MAX_FAILURE = 1
    OUTCOMES.clear()
    video, parent, children = job_tree()
    for attempt in (1, 2):
        RunnerJob.objects.filter(pk=parent.pk).update(failures=1, state=RunnerJobState.PROCESSING)
        parent.refresh_from_db()
        with django_capture_on_commit_callbacks(execute=True):
            HLSTranscodingJobHandler().error(parent, f"broken {attempt}")
        assert len(OUTCOMES) == attempt
        if attempt == 1:
            with django_capture_on_commit_callbacks(execute=True):
                runner_job_requeue(job=parent)
            video.refresh_from_db()
            assert video.state == VideoState.TO_TRANSCODE
    assert [o.error for o in OUTCOMES] == [
        "Transcoding errored: broken 1",
        "Transcoding errored: broken 2",
    ]
