"""Staff work after uploads (issue 18, point 4): bulk actions in batches on the staff queue,
staff launches and jobs in the STAFF class, an upload's first rung first."""

import json
import os
import uuid

import pytest
import redis
from django.conf import settings

from marsha_runner.runners.transcoding import transcoding_plan
from marsha_runner.videos import staff_bulk
from marsha_runner.videos.constants import UploadState
from marsha_runner.videos.models import Video
from tests.observability.test_celery_ids import real_celery  # noqa: F401  (a fixture)


@pytest.mark.parametrize(
    ("first", "expected"),
    [
        (0, [1080, 720, 480, 360, 240]),  # PeerTube's order: the top first
        (480, [480, 1080, 720, 360, 240]),
        (400, [360, 1080, 720, 480, 240]),  # the nearest rung
        (2160, [1080, 720, 480, 360, 240]),
    ],
)
def test_the_first_rung_then_the_others_from_the_top(settings, first, expected):
    settings.TRANSCODING_FIRST_RESOLUTION = first
    ladder = [(r, 30) for r in (1080, 720, 480, 360, 240)]
    assert [r for r, _ in transcoding_plan(ladder=ladder)] == expected


def _staff_messages(client) -> list:
    """The task messages waiting on the staff queue (kombu's Redis list), decoded."""
    import base64

    messages = []
    while (raw := client.rpop(settings.CELERY_STAFF_QUEUE)) is not None:
        envelope = json.loads(raw)
        body = json.loads(base64.b64decode(envelope["body"]))
        messages.append((envelope["headers"]["task"], body[0]))
    return messages


@pytest.mark.redis
@pytest.mark.django_db
@pytest.mark.usefixtures("real_celery")
def test_a_bulk_action_goes_to_the_staff_queue_in_batches(
    settings, django_capture_on_commit_callbacks
):
    settings.CELERY_STAFF_QUEUE = f"staff-{uuid.uuid4().hex[:8]}"  # ours alone on this Redis
    videos = [Video.objects.create(title=f"bulk {n}") for n in range(25)]  # pending: refused
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    with django_capture_on_commit_callbacks(execute=True):
        batches = staff_bulk.videos_bulk_enqueue(
            action="retranscode", queryset=Video.objects.all(), batch_size=10
        )
    assert batches == "25 videos enqueued in 3 batches"
    messages = _staff_messages(client)
    assert [task for task, _ in messages] == [staff_bulk.BULK_TASK] * 3
    assert sorted(len(args[1]) for _, args in messages) == [5, 10, 10]
    assert {video_id for _, args in messages for video_id in args[1]} == {
        str(video.id) for video in videos
    }
    # What the worker runs: each refused (pending videos), none changed.
    counts = [staff_bulk.videos_bulk_run(action=a, video_ids=ids) for _, (a, ids) in messages]
    assert sum(c["skipped"] for c in counts) == 25 and sum(c["done"] for c in counts) == 0
    assert set(Video.objects.values_list("upload_state", flat=True)) == {UploadState.PENDING}
