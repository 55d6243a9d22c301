"""queue_health (one selector, a bounded number of queries) and health_report's exit codes."""

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_peertube_runner_connector.models import Runner, RunnerJob, RunnerJobState

from marsha_runner.operations.selectors import queue_health
from marsha_runner.videos.constants import UploadState
from tests.factories import VideoFactory
from tests.runners.factories import job_tree, runner_make

pytestmark = pytest.mark.django_db


def populate(n: int):
    """``n`` trees of two jobs: parents pending, children waiting; plus videos and runners."""
    for i in range(n):
        job_tree(directory=f"vod/{i:08d}-0000-0000-0000-000000000000/video/{i + 1}")
        VideoFactory(upload_state=UploadState.PROCESSING)
        VideoFactory(upload_state=UploadState.ERROR)
    runner_make(f"online-{n}")
    runner_make(f"offline-{n}")
    Runner.objects.filter(name=f"offline-{n}").update(
        lastContact=timezone.now() - timedelta(hours=2)
    )


def test_queue_health_counts_in_three_queries_whatever_the_size():
    populate(2)
    with CaptureQueriesContext(connection) as small:
        queue_health()
    populate(20)
    now = timezone.now()
    parent = RunnerJob.objects.filter(state=RunnerJobState.PENDING).order_by("createdAt").first()
    RunnerJob.objects.filter(pk=parent.pk).update(createdAt=now - timedelta(minutes=10))
    processing = RunnerJob.objects.filter(state=RunnerJobState.PENDING).exclude(pk=parent.pk)[:3]
    RunnerJob.objects.filter(pk__in=[j.pk for j in processing]).update(
        state=RunnerJobState.PROCESSING
    )
    errored = RunnerJob.objects.filter(state=RunnerJobState.WAITING_FOR_PARENT_JOB)[:4]
    RunnerJob.objects.filter(pk__in=[j.pk for j in errored]).update(
        state=RunnerJobState.ERRORED, finishedAt=now
    )
    old = RunnerJob.objects.filter(state=RunnerJobState.WAITING_FOR_PARENT_JOB)[:1]
    RunnerJob.objects.filter(pk__in=[j.pk for j in old]).update(
        state=RunnerJobState.ERRORED, finishedAt=now - timedelta(days=2)
    )

    with CaptureQueriesContext(connection) as large:
        health = queue_health(now=now)
    assert len(small) == len(large) == 3
    assert health.jobs_pending == 22 - 3
    assert health.jobs_processing == 3
    assert health.jobs_errored_24h == 4  # the one errored two days ago is not counted
    assert 599 <= health.oldest_pending_age <= 601
    assert (health.runners_online, health.runners_offline) == (2, 2)
    assert (health.videos_processing, health.videos_error) == (22, 22)


def report(*args) -> tuple[str, int]:
    out = StringIO()
    try:
        call_command("health_report", *args, stdout=out)
    except CommandError as err:
        return out.getvalue(), err.returncode
    return out.getvalue(), 0


def test_health_report_exits_2_when_a_threshold_is_crossed(settings):
    settings.HEALTH_MIN_RUNNERS_ONLINE = 1
    settings.HEALTH_MAX_PENDING_JOBS = 100
    populate(3)

    text, code = report()
    assert code == 0
    assert "jobs pending: 3" in text and "runners online: 1" in text

    output, code = report("--json", "--max-pending-jobs", "2")
    assert code == 2
    summary = json.loads(output)
    assert summary["health"]["jobs_pending"] == 3
    assert summary["thresholds"]["max_pending_jobs"] == 2
    assert summary["needs_attention"] == ["3 jobs pending (more than 2)"]

    Runner.objects.all().delete()
    text, code = report("--max-pending-jobs", "10")
    assert code == 2
    assert "ALERT: 0 runners online (fewer than 1)" in text

    RunnerJob.objects.update(createdAt=timezone.now() - timedelta(seconds=90))
    _, code = report("--min-runners-online", "0", "--max-oldest-pending-age", "60")
    assert code == 2  # jobs have been waiting for 90 s
    _, code = report("--min-runners-online", "0")
    assert code == 0


def test_health_report_takes_no_dry_run():
    with pytest.raises(CommandError, match="unrecognized arguments: --dry-run"):
        call_command("health_report", "--dry-run")
