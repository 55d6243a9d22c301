"""Read paths of the videos app."""

from .models import Video


def video_get(*, video_id) -> Video:
    """The video, or ``Video.DoesNotExist``."""
    return Video.objects.get(id=video_id)
