"""New uploads first (issue 18, point 4): priority classes, oldest first within one, indexed.

10,000 staff jobs pending (what a bulk action over the catalogue leaves), then a new upload's
job tree: the dev runner is offered the upload's first job first and takes it.
"""

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.utils import timezone
from django_peertube_runner_connector.models import RunnerJob, RunnerJobState, RunnerJobType

from marsha_runner.devrunner.client import RunnerClient
from marsha_runner.runners.handlers import HLSTranscodingJobHandler
from marsha_runner.runners.priority import JobPriority
from marsha_runner.runners.selectors import runner_jobs_available
from tests.runners.factories import job_tree, query_plan, runner_make

BULK = 10_000


def _analyze():
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {RunnerJob._meta.db_table}")


def _staff_jobs(count, *, since):
    """``count`` pending staff jobs, the oldest ``since`` ago, in one bulk insert."""
    RunnerJob.objects.bulk_create(
        [
            RunnerJob(
                uuid=uuid.uuid4(),
                type=RunnerJobType.VOD_HLS_TRANSCODING,
                payload={"input": {"videoFileUrl": "http://x/y"}, "output": {"resolution": 240}},
                privatePayload={"videoUUID": str(uuid.uuid4())},
                state=RunnerJobState.PENDING,
                priority=JobPriority.STAFF,
            )
            for _ in range(count)
        ],
        batch_size=2000,
    )
    # createdAt is auto_now_add: age them in one UPDATE, the oldest first by id order.
    RunnerJob.objects.filter(priority=JobPriority.STAFF).update(createdAt=timezone.now() - since)


@pytest.mark.e2e
def test_a_new_upload_is_offered_before_10000_staff_jobs(live_server_url):
    _staff_jobs(BULK, since=timedelta(hours=1))
    _, parent, children = job_tree(domain=live_server_url, resolutions=(480, 240))
    assert parent.priority == JobPriority.UPLOAD
    runner = RunnerClient(live_server_url, runner_make("priority"), concurrency=1)

    offered = runner.request_jobs()
    assert offered[0]["uuid"] == str(parent.uuid)
    assert len(offered) == 10
    runner.connect()
    try:
        in_flight = {}
        with ThreadPoolExecutor(1) as pool:
            runner.check_available_jobs(pool, in_flight, process=lambda job: True)
    finally:
        runner.disconnect()
    assert [job["uuid"] for job in in_flight.values()] == [str(parent.uuid)]
    parent.refresh_from_db()
    assert parent.state == RunnerJobState.PROCESSING
    assert RunnerJob.objects.filter(state=RunnerJobState.PENDING).count() == BULK


@pytest.mark.django_db
def test_oldest_first_within_a_class_and_uploads_before_staff():
    now = timezone.now()
    staff_old = HLSTranscodingJobHandler(priority=JobPriority.STAFF)
    _, staff_parent, _ = job_tree(resolutions=(240,), directory="vod/s/video/1")
    RunnerJob.objects.filter(pk=staff_parent.pk).update(
        priority=staff_old.priority, createdAt=now - timedelta(hours=2)
    )
    _, old_upload, _ = job_tree(resolutions=(240,), directory="vod/o/video/1")
    RunnerJob.objects.filter(pk=old_upload.pk).update(createdAt=now - timedelta(minutes=5))
    _, new_upload, _ = job_tree(resolutions=(240,), directory="vod/n/video/1")

    order = list(runner_jobs_available().values_list("pk", flat=True))
    assert order == [old_upload.pk, new_upload.pk, staff_parent.pk]


@pytest.mark.django_db
def test_the_dispatch_order_is_read_from_its_index():
    # Thousands pending and the statistics read, as in production: on an empty table the
    # planner may as well read another index over pending jobs (the health counts' one, by
    # state and type) and sort the one row it expects.
    _staff_jobs(2_000, since=timedelta(hours=1))
    _analyze()
    plan = query_plan(runner_jobs_available(job_types=["vod-hls-transcoding"]))
    assert "runners_runnerjob_pending_order" in plan, plan
    assert "Sort" not in plan and "TEMP B-TREE" not in plan.upper(), plan
