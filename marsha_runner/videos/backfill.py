"""``backfill_urls``: recompute the persisted urls of many videos in batches."""

from django.db.models import Prefetch
from django.utils import timezone

from .constants import SubtitleState
from .media_urls import video_thumbnail_known, video_urls_build
from .models import SubtitleTrack, Video


def videos_backfill_urls(*, videos, batch_size: int = 1000, dry_run: bool = False) -> dict:
    """Recompute the persisted urls of ``videos`` (a queryset) in batches.

    ``iterator`` + ``bulk_update`` of the changed rows only: a batch costs one SELECT, one
    for its subtitle tracks and at most one UPDATE, whatever its size; a second run changes
    nothing. The thumbnail of a
    PeerTube version is taken from the persisted urls when there are some (no storage call
    per video), looked up in storage otherwise.
    """
    seen = changed = 0
    pending: list[Video] = []
    fields = ["urls", "updated_on"]
    ready_tracks = SubtitleTrack.objects.filter(state=SubtitleState.READY)
    queryset = (
        videos.only(
            "id", "uploaded_on", "transcode_pipeline", "storage_location", "resolutions", "urls"
        )
        .prefetch_related(Prefetch("subtitle_tracks", queryset=ready_tracks))
        .order_by("pk")
    )
    for video in queryset.iterator(chunk_size=batch_size):
        seen += 1
        urls = video_urls_build(video=video, thumbnail_exists=video_thumbnail_known(video))
        if urls is None or urls == video.urls:
            continue
        changed += 1
        if dry_run:
            continue
        video.urls = urls
        video.updated_on = timezone.now()
        pending.append(video)
        if len(pending) >= batch_size:
            Video.objects.bulk_update(pending, fields, batch_size=batch_size)
            pending = []
    if pending:
        Video.objects.bulk_update(pending, fields, batch_size=batch_size)
    return {"videos": seen, "changed": changed, "dry_run": dry_run}
