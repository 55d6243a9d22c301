"""backfill_urls on 100,000 videos against a naive per-object save() loop (not run by CI).

A scratch PostgreSQL database holds ready videos of every (pipeline, location) pair, their
URLs persisted in an old shape (disk paths, as before VIDEOS_URL): both ways recompute every
URL; each is timed and its queries counted (backfill_urls writes one UPDATE per 1,000 changed
videos through psycopg's server-side binding, which Django does not count).

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/marsha_bench_backfill \
        .venv/bin/python bench/backfill_urls.py [--videos 100000] [--naive-videos 5000]
"""

import argparse
import os
import tempfile
import time

from common import database_create, django_setup  # bench/ is on sys.path as a script

STAMP = 1_600_000_000


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=100_000)
    parser.add_argument(
        "--naive-videos", type=int, default=None, help="Time the naive loop on the first N only."
    )
    args = parser.parse_args()
    url = os.environ.get(
        "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/marsha_bench_backfill"
    )
    root = tempfile.mkdtemp(prefix="marsha-bench-backfill-")
    database_create(url, fresh=True)
    django_setup(
        database_url=url,
        VIDEOS_STORAGE="filesystem",
        AWS_LEGACY_STORAGE="filesystem",
        VIDEOS_ROOT=f"{root}/videos",
        AWS_LEGACY_ROOT=f"{root}/aws",
    )
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from marsha_runner.videos.backfill import videos_backfill_urls
    from marsha_runner.videos.constants import StorageLocation, TranscodePipeline, UploadState
    from marsha_runner.videos.media_urls import video_urls_build
    from marsha_runner.videos.models import Video

    call_command("migrate", verbosity=0)
    pairs = [
        (TranscodePipeline.PEERTUBE, None),
        (TranscodePipeline.PEERTUBE, StorageLocation.SCALEWAY),
        (TranscodePipeline.AWS, StorageLocation.AWS),
        (TranscodePipeline.AWS, StorageLocation.SCALEWAY),
    ]

    def fill():
        Video.objects.all().delete()
        old = {"manifests": {"hls": "/srv/old/master.m3u8"}, "mp4": {}, "thumbnails": {"240": "x"}}
        Video.objects.bulk_create(
            (
                Video(
                    title=f"v{i}",
                    upload_state=UploadState.READY,
                    uploaded_on=Video.stamp_to_datetime(STAMP),
                    transcode_pipeline=pairs[i % 4][0],
                    storage_location=pairs[i % 4][1],
                    resolutions=[240, 480, 720],
                    urls=old,
                )
                for i in range(args.videos)
            ),
            batch_size=5000,
        )

    def naive():
        changed = 0
        for video in Video.objects.order_by("pk")[: args.naive_videos or args.videos]:
            urls = video_urls_build(video=video, thumbnail_exists=True)
            if urls != video.urls:
                video.urls = urls
                video.save()
                changed += 1
        return {"changed": changed}

    for name, run in (
        ("backfill_urls", lambda: videos_backfill_urls(videos=Video.objects.all())),
        ("backfill_urls again", lambda: videos_backfill_urls(videos=Video.objects.all())),
        ("naive save() loop", naive),
    ):
        if name != "backfill_urls again":
            fill()
        with CaptureQueriesContext(connection) as queries:
            started = time.monotonic()
            result = run()
            seconds = time.monotonic() - started
        print(
            f"{name}: {result.get('videos', result['changed'])} videos, "
            f"{result['changed']} changed, "
            f"{seconds:.1f} s, {len(queries)} queries"
        )


if __name__ == "__main__":
    main()
