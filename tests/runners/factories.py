"""Runner job trees and runners for the runner API tests (no ffmpeg needed)."""

from django.core.files import File
from django.core.files.base import ContentFile
from django_peertube_runner_connector.models import (
    RunnerJob,
    RunnerJobState,
    Video,
    VideoFile,
    VideoStreamingPlaylist,
)
from django_peertube_runner_connector.storage import video_storage

from marsha_runner.runners.handlers import HLSTranscodingJobHandler
from marsha_runner.runners.tokens import runner_seed

REGISTRATION_TOKEN = "ptrrt-tests"


def runner_make(name: str) -> str:
    """A pre-registered runner; returns its token."""
    token = f"ptrt-{name}"
    runner_seed(registration_token=REGISTRATION_TOKEN, runner_name=name, runner_token=token)
    return token


def job_tree(
    *,
    domain="http://testserver",
    resolutions=(720, 360),
    directory="vod/abc/video/1",
    source_object=True,
):
    """A transcoded video with a source file (its row and, unless ``source_object`` is False,
    a small object in the video storage), a parent job and waiting children."""
    base_name = directory.rsplit("/", 1)[-1]
    video = Video.objects.create(state=2, directory=directory, baseFilename=base_name)
    source_key = directory.replace("vod/", "tmp/", 1)
    if source_object and not video_storage.exists(source_key):
        video_storage.save(source_key, ContentFile(b"source", name="source"))
    VideoFile.objects.create(
        video=video,
        filename=source_key,
        extname="",
        size=10,
        resolution=720,
        fps=30,
    )
    handler = HLSTranscodingJobHandler()
    top, *lower = resolutions
    parent = handler.create(
        video=video, resolution=top, fps=30, depends_on_runner_job=None, domain=domain
    )
    children = [
        handler.create(
            video=video, resolution=r, fps=30, depends_on_runner_job=parent, domain=domain
        )
        for r in lower
    ]
    return video, parent, children


def rendition_complete(job: RunnerJob, mp4, m3u8) -> None:
    """Complete ``job`` with the rendition files ``mp4`` and ``m3u8`` (paths), as our handler
    does once a runner's success was checked: store, record, tell the host after commit."""
    with open(mp4, "rb") as video, open(m3u8, "rb") as playlist:
        HLSTranscodingJobHandler().complete(
            job,
            {"video_file": File(video, name=mp4.name), "resolution_playlist_file": File(playlist)},
        )


def snapshot(job: RunnerJob) -> dict:
    """Every column of the job row, as stored."""
    return RunnerJob.objects.filter(pk=job.pk).values().get()


def job_tree_finish(*, video: Video, jobs, state=RunnerJobState.COMPLETED):
    """Every job of the tree in ``state``; completed ones leave their rendition row."""
    playlist, _ = VideoStreamingPlaylist.objects.get_or_create(video=video)
    for job in jobs:
        RunnerJob.objects.filter(pk=job.pk).update(state=state)
        if state == RunnerJobState.COMPLETED:
            resolution = job.payload["output"]["resolution"]
            VideoFile.objects.create(
                video=video,
                streamingPlaylist=playlist,
                resolution=resolution,
                filename=f"{video.directory}/{video.baseFilename}-{resolution}-fragmented.mp4",
                extname=".mp4",
                size=10,
                fps=30,
            )


def query_plan(queryset) -> str:
    """The database's plan for ``queryset``, as text (PostgreSQL: sequential scans off, so a
    tiny test table still shows the index the planner would choose on a big one)."""
    from django.db import connection

    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute(f"EXPLAIN {sql}", params)
        else:
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
        return " ".join(str(row) for row in cursor.fetchall())
