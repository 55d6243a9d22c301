"""Reads of the migration: what is left to migrate, and where it stands over every worker."""

from datetime import timedelta

from django.db.models import Count, Max, Min, Q, Sum
from django.utils import timezone

from marsha_runner.videos.constants import StorageLocation, TranscodePipeline
from marsha_runner.videos.models import Video

from .models import MigrationLock, MigrationObject, MigrationVideo

RATE_WINDOW = 300  # seconds of verified objects the rate is measured over


def videos_to_migrate():
    """Legacy videos still read from the AWS bucket."""
    return Video.objects.filter(
        transcode_pipeline=TranscodePipeline.AWS, storage_location=StorageLocation.AWS
    ).order_by("created_on", "pk")


def _rate(now) -> float:
    """Bytes per second verified over the last RATE_WINDOW seconds, every worker included."""
    recent = MigrationObject.objects.filter(verified_on__gte=now - timedelta(seconds=RATE_WINDOW))
    window = recent.aggregate(bytes=Sum("size"), first=Min("verified_on"), last=Max("verified_on"))
    if not window["bytes"]:
        return 0.0
    seconds = max((now - window["first"]).total_seconds(), 1.0)
    return window["bytes"] / seconds


def migration_progress(*, errors: int = 10) -> dict:
    """Videos migrated, failed, running, pending; objects and bytes of the listed videos;
    rate, ETA and the last errors — one dict for ``--status`` and the admin page."""
    now = timezone.now()
    legacy = Video.objects.filter(transcode_pipeline=TranscodePipeline.AWS).aggregate(
        total=Count("pk"),
        migrated=Count("pk", filter=Q(storage_location=StorageLocation.SCALEWAY)),
    )
    in_aws = MigrationVideo.objects.filter(video__storage_location=StorageLocation.AWS)
    states = dict(in_aws.values_list("state").annotate(n=Count("pk")).order_by())
    running = MigrationLock.objects.filter(expires_on__gt=now).count()
    failed = states.get(MigrationVideo.State.FAILED, 0)
    sums = MigrationVideo.objects.aggregate(
        listed=Count("pk", filter=Q(objects_total__gt=0)),
        objects=Sum("objects_total"),
        objects_done=Sum("objects_done"),
        bytes=Sum("bytes_total"),
        bytes_done=Sum("bytes_done"),
    )
    sums = {name: value or 0 for name, value in sums.items()}
    pending = max(legacy["total"] - legacy["migrated"] - failed - running, 0)
    unlisted = max(legacy["total"] - sums["listed"], 0)
    average = sums["bytes"] / sums["listed"] if sums["listed"] else 0
    remaining = sums["bytes"] - sums["bytes_done"] + unlisted * average
    rate = _rate(now)
    return {
        "videos": legacy["total"],
        "migrated": legacy["migrated"],
        "failed": failed,
        "running": running,
        "queued": states.get(MigrationVideo.State.QUEUED, 0),
        "stopped": states.get(MigrationVideo.State.STOPPED, 0),
        "pending": pending,
        "objects": sums["objects"],
        "objects_done": sums["objects_done"],
        "bytes": sums["bytes"],
        "bytes_done": sums["bytes_done"],
        "bytes_remaining_estimate": round(remaining),
        "bytes_per_second": round(rate),
        "eta_seconds": round(remaining / rate) if rate and pending + running else None,
        "last_errors": [
            {"video": str(video_id), "reason": reason, "on": on.isoformat()}
            for video_id, reason, on in in_aws.filter(state=MigrationVideo.State.FAILED)
            .order_by("-updated_on")
            .values_list("video_id", "reason", "updated_on")[:errors]
        ],
    }


def migration_progress_of_video(*, video_id) -> dict:
    """One video's migration: its state, counts, lease, open upload and object errors (the
    admin's per-video page; a video page links to it)."""
    video = Video.objects.only("pk", "transcode_pipeline", "storage_location").get(pk=video_id)
    row = MigrationVideo.objects.filter(video_id=video_id).first()
    lock = MigrationLock.objects.filter(video_id=video_id).first()
    if video.transcode_pipeline != TranscodePipeline.AWS:
        state = "not a legacy video"
    elif video.storage_location == StorageLocation.SCALEWAY:
        state = MigrationVideo.State.MIGRATED
    elif lock is not None and lock.expires_on > timezone.now():
        state = MigrationVideo.State.RUNNING
    else:
        state = row.state if row else "not started"
    objects = MigrationObject.objects.filter(video_id=video_id)
    return {
        "video": str(video_id),
        "state": str(state),
        "reason": row.reason if row else "",
        "objects": row.objects_total if row else 0,
        "objects_done": row.objects_done if row else 0,
        "bytes": row.bytes_total if row else 0,
        "bytes_done": row.bytes_done if row else 0,
        "attempts": row.attempts if row else 0,
        "worker": row.worker if row else "",
        "started_on": row.started_on if row else None,
        "finished_on": row.finished_on if row else None,
        "lease": {"owner": lock.owner, "expires_on": lock.expires_on} if lock else None,
        "uploading": list(
            objects.exclude(upload_id="")
            .annotate(parts_done=Count("parts"))
            .values("key", "size", "parts_done")
        ),
        "object_errors": list(objects.exclude(error="").values("key", "error")[:20]),
    }
