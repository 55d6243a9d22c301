"""The dev dataset loads by name and holds a few videos in each state."""

from collections import Counter

import pytest
from django.core.management import call_command

from marsha_runner.videos.constants import UploadState
from marsha_runner.videos.models import Video

pytestmark = pytest.mark.django_db


def test_videos_fixture_loads_with_every_state():
    call_command("loaddata", "videos", verbosity=0)
    states = Counter(Video.objects.values_list("upload_state", flat=True))
    assert set(states) == set(UploadState.values)
    assert min(states.values()) >= 2
    for video in Video.objects.filter(upload_state=UploadState.READY):
        assert video.urls["manifests"]["hls"]
        assert sorted(video.resolutions) == video.resolutions
    for video in Video.objects.filter(upload_state=UploadState.ERROR):
        assert video.upload_error_reason
