"""factory-boy factories of our own models."""

import factory

from marsha_runner.videos.constants import UploadState
from marsha_runner.videos.models import Video


class VideoFactory(factory.django.DjangoModelFactory):
    """A fresh video, waiting for its upload."""

    class Meta:
        model = Video

    title = factory.Sequence(lambda n: f"Video {n}")
    upload_state = UploadState.PENDING
