"""Each changelist runs the same number of queries with 5 rows and with 50 (asserted)."""

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_peertube_runner_connector.models import RunnerJobState

from marsha_runner.runners import models as proxies
from marsha_runner.runners.tokens import runner_seed
from marsha_runner.videos.constants import TranscodePipeline, UploadState
from marsha_runner.videos.models import Video
from tests.factories import VideoFactory
from tests.runners.factories import job_tree

from .helpers import changelist

pytestmark = pytest.mark.django_db


def add_rows(model, n):
    if model is Video:
        for i in range(n):
            VideoFactory(
                upload_state=UploadState.READY, transcode_pipeline=TranscodePipeline.PEERTUBE,
                resolutions=[240, 720], size=10**8, duration=75.0,
                urls={"thumbnails": {"720": f"http://x/{i}.jpg"}},
            )  # fmt: skip
    elif model in (proxies.RunnerJob, proxies.TranscodedVideo, proxies.TranscodedFile):
        runner = proxies.Runner.objects.first()
        for _ in range((n + 1) // 2 if model is proxies.RunnerJob else n):
            video = VideoFactory()
            _video, parent, _children = job_tree(directory=f"vod/{video.id}/video/1")
            proxies.RunnerJob.objects.filter(pk=parent.pk).update(
                runner=runner, state=RunnerJobState.PROCESSING, progress=42.0
            )
    elif model is proxies.Runner:
        for _ in range(n):
            name = f"r-{uuid.uuid4().hex[:8]}"
            runner_seed(registration_token="ptrrt-q", runner_name=name, runner_token=name)
    elif model is proxies.RunnerRegistrationToken:
        for _ in range(n):
            runner_seed(registration_token=f"ptrrt-{uuid.uuid4()}")
    elif model is proxies.TranscodedPlaylist:
        from django_peertube_runner_connector.models import Video as TV
        from django_peertube_runner_connector.models import VideoStreamingPlaylist

        for _ in range(n):
            VideoStreamingPlaylist.objects.create(
                video=TV.objects.create(state=1, directory="vod/x"), playlistFilename="m"
            )
    elif model is proxies.TranscodingJobInfo:
        from django_peertube_runner_connector.models import Video as TV
        from django_peertube_runner_connector.models import VideoJobInfo

        for _ in range(n):
            VideoJobInfo.objects.create(video=TV.objects.create(state=1, directory="vod/x"))


MODELS = [
    Video,
    proxies.RunnerJob,
    proxies.Runner,
    proxies.RunnerRegistrationToken,
    proxies.TranscodedVideo,
    proxies.TranscodedFile,
    proxies.TranscodedPlaylist,
    proxies.TranscodingJobInfo,
]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_same_queries_with_5_and_50_rows(admin_client, model):
    runner_seed(registration_token="ptrrt-base", runner_name="base", runner_token="ptrt-base")
    counts = []
    for target in (5, 50):
        add_rows(model, target - model.objects.count())
        assert model.objects.count() >= target
        admin_client.get(changelist(model))  # warm caches (content types, sessions)
        with CaptureQueriesContext(connection) as queries:
            response = admin_client.get(changelist(model))
        assert response.status_code == 200
        assert len(response.context["cl"].result_list) == min(model.objects.count(), 50)
        counts.append(len(queries))
    assert counts[0] == counts[1], counts
    print(f"{model.__name__}: {counts[0]} queries")  # noqa: T201


def test_runner_counts_of_the_last_24h(admin_client):
    runner_seed(registration_token="ptrrt-base", runner_name="busy", runner_token="ptrt-busy")
    runner = proxies.Runner.objects.get(name="busy")
    now = timezone.now()
    for state, finished, n in (
        (RunnerJobState.PROCESSING, None, 2),
        (RunnerJobState.COMPLETED, now, 3),
        (RunnerJobState.COMPLETED, now - timezone.timedelta(days=2), 4),
        (RunnerJobState.ERRORED, now, 1),
    ):
        for _ in range(n):
            _v, parent, _c = job_tree(resolutions=(720,))
            proxies.RunnerJob.objects.filter(pk=parent.pk).update(
                runner=runner, state=state, finishedAt=finished
            )
    response = admin_client.get(changelist(proxies.Runner))
    row = response.context["cl"].result_list[0]
    assert (row.jobs_in_progress, row.jobs_completed_24h, row.jobs_failed_24h) == (2, 3, 1)
    html = response.content.decode()
    assert "ptrt-busy" not in html


def test_index_with_health_panel_same_queries_with_5_and_50_rows(admin_client):
    from django.urls import reverse

    runner_seed(registration_token="ptrrt-base", runner_name="base", runner_token="ptrt-base")
    counts = []
    for target in (5, 50):
        add_rows(proxies.RunnerJob, target - proxies.RunnerJob.objects.count())
        add_rows(Video, target - Video.objects.count())
        admin_client.get(reverse("admin:index"))
        with CaptureQueriesContext(connection) as queries:
            response = admin_client.get(reverse("admin:index"))
        assert 'id="queue-health"' in response.content.decode()
        counts.append(len(queries))
    assert counts[0] == counts[1], counts
