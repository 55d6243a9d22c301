"""Every lookup of a video's jobs goes through one expression (``JobVideoUUID``), the one
migration 0005 indexes: the watchdog's included, checked on PostgreSQL's own plan."""

import uuid

import pytest
from django.db import connection
from django_peertube_runner_connector.models import RunnerJobState

from marsha_runner.runners.models import RunnerJob
from marsha_runner.runners.selectors import (
    runner_jobs_active_of_videos,
    runner_jobs_of_transcoding,
    runner_jobs_of_videos,
)
from marsha_runner.runners.watchdog import runner_jobs_prune_batch
from tests.runners.factories import job_tree, query_plan

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]
INDEX = "runners_runnerjob_video_uuid_text"


def test_the_watchdogs_lookups_of_a_videos_jobs_use_the_index():
    video, parent, children = job_tree()
    other, *_ = job_tree()
    RunnerJob.objects.filter(pk=children[0].pk).update(state=RunnerJobState.COMPLETED)
    uuids = [str(video.uuid), str(uuid.uuid4())]

    busy = runner_jobs_active_of_videos(video_uuids=uuids)  # prune: is a tree still running?
    assert set(busy.values_list("video_uuid", flat=True)) == {str(video.uuid)}
    assert set(busy) == {parent, *children[1:]}
    concluded = runner_jobs_of_transcoding(video_uuid=video.uuid)  # a tree's outcome
    assert set(concluded) == {parent, *children}
    assert set(runner_jobs_of_videos(video_uuids=[other.uuid])) != set()

    assert connection.vendor == "postgresql"
    for queryset in (concluded, runner_jobs_of_videos(video_uuids=uuids)):
        plan = query_plan(queryset)
        assert INDEX in plan, plan
    # Active jobs of some videos: the planner may prefer the partial index of active states
    # (few rows on a real table); either way an index, and the video is matched by the
    # indexed text expression, not the jsonb one ``privatePayload__videoUUID__in`` compiled to.
    plan = query_plan(busy).replace("\\'", "'")
    assert "Seq Scan" not in plan and "Index" in plan, plan
    assert """("privatePayload" ->> 'videoUUID'::text)""" in plan, plan


def test_prune_keeps_the_finished_jobs_of_a_running_tree():
    video, parent, children = job_tree()
    RunnerJob.objects.filter(pk=parent.pk).update(state=RunnerJobState.COMPLETED)
    deleted, _last = runner_jobs_prune_batch(
        after_pk=None, keep=lambda directories: set(), batch_size=100
    )
    assert deleted == 0  # its children still wait: the tree is running
    assert RunnerJob.objects.filter(pk=parent.pk).exists()
