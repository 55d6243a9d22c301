"""Read paths of the videos app."""

from django.db.models import QuerySet

from .constants import UploadState
from .models import Video


def videos_by_state_counted() -> dict:
    """``(queryset, column)`` per upload state, for ``counting.bounded_counts``: each
    read from the ``upload_state`` index alone."""
    return {
        state: (Video.objects.filter(upload_state=state), "upload_state")
        for state in UploadState.values
    }


def video_get(*, video_id) -> Video:
    """The video, or ``Video.DoesNotExist``."""
    return Video.objects.get(id=video_id)


def video_id_of_destination(destination: str | None) -> str | None:
    """Our video's id from a transcoding destination ``vod/<id>/video/<stamp>``."""
    from .services import DESTINATION_RE

    match = DESTINATION_RE.match(destination or "")
    return match["video_id"] if match else None


def video_outputs_root(*, video_id) -> str:
    """``vod/<id>/``: the directory above every transcoded version of one video."""
    from .constants import OUTPUT_PREFIX

    return OUTPUT_PREFIX.split("{stamp}", 1)[0].format(video_id=video_id)


def video_list(*, upload_states=None, ids=None) -> QuerySet[Video]:
    """Videos by creation, newest first (ties by id, so pages never overlap); optionally only
    those in ``upload_states`` or with one of ``ids``. One query, whatever the size."""
    videos = Video.objects.order_by("-created_on", "-id")
    if upload_states:
        videos = videos.filter(upload_state__in=upload_states)
    if ids:
        videos = videos.filter(id__in=ids)
    return videos
