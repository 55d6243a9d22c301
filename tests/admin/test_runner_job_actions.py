"""Runner job actions: cancel, requeue, ping, delete finished in bulk (PeerTube's semantics)."""

from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_peertube_runner_connector.models import RunnerJobState

from marsha_runner.runners.models import RunnerJob
from tests.runners.factories import job_tree, snapshot

from .helpers import action_names, messages_of, post_action, staff_user

pytestmark = pytest.mark.django_db
VIDEO_1 = "00000000-0000-4000-8000-000000000001"
VIDEO_2 = "00000000-0000-4000-8000-000000000002"


def state(job):
    return RunnerJob.objects.get(pk=job.pk).state


@pytest.fixture
def trees():
    _video, parent, children = job_tree(directory=f"vod/{VIDEO_1}/video/1")
    _other, other_parent, other_children = job_tree(directory=f"vod/{VIDEO_2}/video/2")
    return parent, children, other_parent, other_children


def test_cancel_refused_without_its_permission(client, trees):
    parent, *_ = trees
    client.force_login(staff_user("requeue_runnerjob"))
    assert "cancel_jobs" not in action_names(client, RunnerJob)
    before = snapshot(parent)
    response = post_action(client, RunnerJob, "cancel_jobs", [parent], confirmed=True)
    assert response.status_code == 302  # "no action selected": nothing ran
    assert snapshot(parent) == before
    assert not LogEntry.objects.exists()


def test_cancel_confirmation_page_then_effect_on_the_selection_only(client, trees):
    parent, children, other_parent, other_children = trees
    done = other_children[0]
    RunnerJob.objects.filter(pk=done.pk).update(state=RunnerJobState.COMPLETED)
    client.force_login(staff_user("cancel_runnerjob"))

    page = post_action(client, RunnerJob, "cancel_jobs", [parent, done])
    assert page.status_code == 200
    assert page.templates[0].name == "admin_kit/confirm_action.html"
    html = page.content.decode()
    assert "will be cancelled, with 1 dependent job(s)" in html
    assert "skipped: it is completed: only a pending, waiting or processing job" in html
    assert state(parent) == RunnerJobState.PENDING  # the page changed nothing
    assert 'name="confirmed" value="yes"' in html

    response = post_action(client, RunnerJob, "cancel_jobs", [parent, done], confirmed=True)
    assert response.status_code == 302
    assert state(parent) == RunnerJobState.CANCELLED
    assert state(children[0]) == RunnerJobState.PARENT_CANCELLED
    assert state(other_parent) == RunnerJobState.PENDING  # not selected
    assert state(done) == RunnerJobState.COMPLETED
    messages = messages_of(response)
    assert (
        f"{RunnerJob.objects.get(pk=parent.pk)}: cancelled, with 1 dependent job(s)." in messages
    )
    assert any(
        "skipped: it is completed" in m and str(RunnerJob.objects.get(pk=done.pk)) in m
        for m in messages
    )
    assert any("1 done, 1 skipped" in m for m in messages)
    entry = LogEntry.objects.get()
    assert entry.object_id == str(parent.pk)
    assert entry.content_type.model_class() is RunnerJob
    assert "cancelled" in entry.change_message


def test_requeue_errored_job_resets_failures(client, trees):
    parent, children, other_parent, _ = trees
    RunnerJob.objects.filter(pk=parent.pk).update(
        state=RunnerJobState.ERRORED, failures=5, error="boom", finishedAt=timezone.now()
    )
    RunnerJob.objects.filter(pk=children[0].pk).update(state=RunnerJobState.PARENT_ERRORED)
    client.force_login(staff_user("requeue_runnerjob"))
    assert "requeue_jobs" in action_names(client, RunnerJob)

    page = post_action(client, RunnerJob, "requeue_jobs", [parent, other_parent])
    html = page.content.decode()
    assert "will be requeued (errored), with 1 dependent job(s)" in html
    assert "skipped: it is pending: only an errored or stalled job can be requeued" in html

    response = post_action(
        client, RunnerJob, "requeue_jobs", [parent, other_parent], confirmed=True
    )
    job = RunnerJob.objects.get(pk=parent.pk)
    assert (job.state, job.failures, job.error) == (RunnerJobState.PENDING, 0, None)
    assert state(children[0]) == RunnerJobState.WAITING_FOR_PARENT_JOB
    assert any("skipped: it is pending" in m for m in messages_of(response))
    assert LogEntry.objects.get().object_id == str(parent.pk)


def test_requeue_stalled_job(client, trees, settings):
    parent, *_ = trees
    settings.RUNNERS_STALLED_JOB_TIMEOUT = 60
    RunnerJob.objects.filter(pk=parent.pk).update(
        state=RunnerJobState.PROCESSING, processingJobToken="ptrjt-x"
    )
    RunnerJob.objects.filter(pk=parent.pk).update(updatedAt=timezone.now() - timedelta(hours=1))
    client.force_login(staff_user("requeue_runnerjob"))
    post_action(client, RunnerJob, "requeue_jobs", [parent], confirmed=True)
    job = RunnerJob.objects.get(pk=parent.pk)
    assert (job.state, job.processingJobToken) == (RunnerJobState.PENDING, None)


def test_staff_and_the_watchdog_agree_on_stalled(client, trees, settings):
    """One rule (watchdog.runner_job_is_stalled): a job left completing past the timeout is
    stalled for staff too; the same job updated just now is not, for either."""
    from marsha_runner.runners.watchdog import runner_job_stalled_before, runner_jobs_stalled

    parent, children, *_ = trees
    settings.RUNNERS_STALLED_JOB_TIMEOUT = 60
    old = timezone.now() - timedelta(hours=1)
    RunnerJob.objects.filter(pk=parent.pk).update(state=RunnerJobState.COMPLETING, updatedAt=old)
    RunnerJob.objects.filter(pk=children[0].pk).update(state=RunnerJobState.COMPLETING)
    seen = {
        ref.uuid
        for ref in runner_jobs_stalled(updated_before=runner_job_stalled_before(), limit=10)
    }
    assert seen == {str(parent.uuid)}
    client.force_login(staff_user("requeue_runnerjob"))
    response = post_action(
        client, RunnerJob, "requeue_jobs", [parent, children[0]], confirmed=True
    )
    messages = messages_of(response)
    assert any("requeued (stalled)" in m for m in messages), messages
    assert any("skipped: it is completing: only an errored or stalled job" in m for m in messages)
    assert (state(parent), state(children[0])) == (
        RunnerJobState.PENDING,
        RunnerJobState.COMPLETING,
    )


def _finished_jobs(count):
    for _ in range(count):
        _video, parent, children = job_tree(directory=f"vod/{VIDEO_1}/video/9")
        RunnerJob.objects.filter(pk__in=[parent.pk, *[c.pk for c in children]]).update(
            state=RunnerJobState.COMPLETED
        )


def test_delete_finished_in_bulk_select_all(client, trees):
    parent, children, other_parent, other_children = trees
    # other tree: parent completed, its child still pending → both kept.
    RunnerJob.objects.filter(pk=other_parent.pk).update(state=RunnerJobState.COMPLETED)
    RunnerJob.objects.filter(pk=other_children[0].pk).update(state=RunnerJobState.PENDING)
    _finished_jobs(10)  # 20 finished jobs
    client.force_login(staff_user("purge_runnerjob"))

    page = post_action(client, RunnerJob, "delete_finished_jobs", [parent], select_across=True)
    html = page.content.decode()
    assert "24 runner jobs selected" in html
    assert "Finished among the selection: 21; unfinished (kept): 3." in html
    assert RunnerJob.objects.count() == 24

    response = post_action(
        client, RunnerJob, "delete_finished_jobs", [parent], select_across=True, confirmed=True
    )
    assert set(RunnerJob.objects.values_list("pk", flat=True)) == {
        parent.pk,
        children[0].pk,
        other_parent.pk,
        other_children[0].pk,
    }
    expected = "20 finished job(s) deleted; kept: 3 unfinished, 1 finished"
    assert any(expected in m for m in messages_of(response))
    entry = LogEntry.objects.get()
    assert entry.object_id is None and "20 finished job(s) deleted" in entry.change_message


def test_delete_finished_runs_the_same_queries_for_10_or_100_jobs(client):
    client.force_login(staff_user("purge_runnerjob"))
    counts = []
    for n in (5, 50):
        _finished_jobs(n)
        any_job = RunnerJob.objects.first()
        with CaptureQueriesContext(connection) as queries:
            post_action(
                client, RunnerJob, "delete_finished_jobs", [any_job], select_across=True,
                confirmed=True,
            )  # fmt: skip
        assert not RunnerJob.objects.exists()
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_delete_finished_only_the_selected(client, trees):
    parent, children, other_parent, other_children = trees
    RunnerJob.objects.update(state=RunnerJobState.COMPLETED)
    client.force_login(staff_user("purge_runnerjob"))
    post_action(client, RunnerJob, "delete_finished_jobs", [children[0]], confirmed=True)
    assert not RunnerJob.objects.filter(pk=children[0].pk).exists()
    assert RunnerJob.objects.count() == 3
