"""GET /api/videos/: the videos the caller may see, paginated, filterable, in a fixed number
of queries whatever their number."""

import datetime
import uuid

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from marsha_runner.videos.constants import UploadState
from marsha_runner.videos.models import Video
from tests.api_errors import api_errors
from tests.factories import VideoFactory

pytestmark = pytest.mark.django_db


def make_videos(count, **fields):
    """``count`` videos created one minute apart (oldest first), returned newest first."""
    start = timezone.now() - datetime.timedelta(days=1)
    videos = VideoFactory.create_batch(count, **fields)
    for minutes, video in enumerate(videos):
        Video.objects.filter(id=video.id).update(
            created_on=start + datetime.timedelta(minutes=minutes)
        )
    return [str(v.id) for v in reversed(videos)]


def ids(response):
    assert response.status_code == 200, response.content
    return [video["id"] for video in response.json()["results"]]


def test_pages_of_twenty_newest_first(api):
    expected = make_videos(25)
    first = api.get("/api/videos/")
    body = first.json()
    assert body["count"] == 25
    assert ids(first) == expected[:20]
    assert body["previous"] is None
    second = api.get(body["next"])
    assert ids(second) == expected[20:]
    assert second.json()["next"] is None
    assert set(second.json()["results"][0]) >= {"id", "title", "upload_state", "urls"}


def test_page_size_is_chosen_within_a_cap(api):
    expected = make_videos(7)
    assert ids(api.get("/api/videos/?page_size=3&page=2")) == expected[3:6]
    make_videos(100)
    assert len(ids(api.get("/api/videos/?page_size=1000"))) == 100  # capped


def test_filter_by_state(api):
    ready = make_videos(3, upload_state=UploadState.READY)
    errored = make_videos(2, upload_state=UploadState.ERROR)
    make_videos(4)  # pending
    assert set(ids(api.get("/api/videos/?upload_state=ready"))) == set(ready)
    both = ids(api.get("/api/videos/?upload_state=ready&upload_state=error"))
    assert set(both) == set(ready + errored)
    assert ids(api.get("/api/videos/?upload_state=processing")) == []


def test_filter_by_ids_polls_several_videos_at_once(api):
    every = make_videos(6)
    wanted = [every[1], every[4]]
    query = "&".join(f"id={video_id}" for video_id in wanted)
    assert ids(api.get(f"/api/videos/?{query}")) == wanted
    assert ids(api.get(f"/api/videos/?id={uuid.uuid4()}")) == []


@pytest.mark.parametrize(
    ("query", "field"),
    [("upload_state=done", "upload_state"), ("id=not-a-uuid", "id"), ("page=99", None)],
)
def test_bad_filters_are_refused_in_the_error_shape(api, query, field):
    make_videos(2)
    response = api.get(f"/api/videos/?{query}")
    errors = api_errors(response, 404 if query.startswith("page") else 400)
    assert [(name or "").split(".")[0] or None for name in errors] == [field]


def test_refused_without_the_permission():
    make_videos(2)
    api_errors(APIClient().get("/api/videos/"), 401)
    reader = APIClient()
    reader.force_authenticate(User.objects.create_user("reader", password="reader-password-1"))
    api_errors(reader.get("/api/videos/"), 403)


def queries_of_a_list(api, count) -> int:
    Video.objects.all().delete()
    make_videos(count, upload_state=UploadState.READY)
    api.get("/api/videos/")  # warm the user's permission cache
    with CaptureQueriesContext(connection) as queries:
        assert len(ids(api.get("/api/videos/?upload_state=ready&page_size=100"))) == count
    return len(queries)


def test_a_list_is_two_queries_plus_pagination_whatever_its_size(api):
    small, large = queries_of_a_list(api, 1), queries_of_a_list(api, 60)
    # COUNT(*) for the page, the page itself, then the subtitle tracks of its videos.
    assert small == large == 3, (small, large)
