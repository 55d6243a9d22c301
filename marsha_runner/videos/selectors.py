"""Read paths of the videos app."""

from django.db.models import QuerySet

from .constants import DESTINATION_RE, UploadState
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
    match = DESTINATION_RE.match(destination or "")
    return match["video_id"] if match else None


def video_outputs_root(*, video_id) -> str:
    """``vod/<id>/video/``: the directory above every transcoded version of one video."""
    return Video(id=video_id).outputs_root()


def video_list(*, upload_states=None, ids=None) -> QuerySet[Video]:
    """Videos by creation, newest first (ties by id, so pages never overlap); optionally only
    those in ``upload_states`` or with one of ``ids``. One query, whatever the size, and one
    for the subtitle tracks of a page."""
    videos = Video.objects.order_by("-created_on", "-id").prefetch_related("subtitle_tracks")
    if upload_states:
        videos = videos.filter(upload_state__in=upload_states)
    if ids:
        videos = videos.filter(id__in=ids)
    return videos


def video_subtitle_tracks(*, video: Video) -> list[dict]:
    """The subtitle tracks of the served version, oldest first, with their state (a ready
    one's URL is in ``urls["subtitles"]``). Reads ``subtitle_tracks.all()``: a prefetch
    serves a page of videos in one query."""
    stamp = video.active_stamp
    tracks = sorted(
        (t for t in video.subtitle_tracks.all() if stamp is not None and t.stamp == stamp),
        key=lambda track: track.created_on,
    )
    return [
        {"language": t.language or None, "state": t.state, "error_reason": t.error_reason}
        for t in tracks
    ]


def video_titles_of_destinations(destinations) -> dict[str, tuple[str, str]]:
    """{destination: (video id, title)} for many transcoding destinations in one query (the
    admin names runner jobs by their video's title)."""
    ids = {d: video_id_of_destination(d) for d in destinations if d}
    wanted = {i for i in ids.values() if i}
    if not wanted:
        return {}
    rows = Video.objects.filter(id__in=wanted).values_list("id", "title")
    titles = {str(pk): title for pk, title in rows}
    return {d: (i, titles[i]) for d, i in ids.items() if i in titles}


def video_current_destinations(destinations) -> set[str]:
    """Those of ``destinations`` holding a video's served or latest version (their runner
    jobs are kept: the video's page shows them, with its failure history)."""
    wanted = {}
    for destination in destinations:
        video_id = video_id_of_destination(destination)
        if video_id:
            stamp = int(destination.rsplit("/", 1)[-1])
            wanted.setdefault(video_id, set()).add(stamp)
    current = set()
    rows = Video.objects.filter(id__in=list(wanted)).values_list(
        "id", "uploaded_on", "processing_stamp", "launched_stamp"
    )
    for video_id, uploaded_on, processing_stamp, launched_stamp in rows:
        stamps = {processing_stamp, launched_stamp}
        if uploaded_on:
            stamps.add(int(uploaded_on.timestamp()))
        for stamp in wanted[str(video_id)] & stamps:
            current.add(Video(id=video_id).output_prefix(stamp))
    return current
