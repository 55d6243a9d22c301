"""Staff admin at scale: changelist and index-page times and query counts with 100,000 videos
and 1,000,000 runner jobs, on PostgreSQL (not run by CI; it prints figures).

Rows are generated server side (generate_series) into a scratch database, then each page is
requested through the Django test client as a superuser: the default list, each filter, a
search, the last page, the admin index with its queue health panel, and a Prometheus scrape
of ``/metrics`` (the same selector as the panel). ``--only index,metrics`` times just those.

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/marsha_admin_bench \\
        .venv/bin/python bench/admin.py [--videos 100000] [--jobs 1000000] [--repeat 5]
"""

import argparse
import os
import statistics
import time

from common import database_create, django_setup  # bench/ is on sys.path as a script

INSERT_VIDEOS = """
INSERT INTO videos_video
    (id, title, upload_state, upload_error_reason, uploaded_on, processing_stamp,
     launched_stamp, transcode_pipeline, storage_location, resolutions, duration, size, urls,
     processing_by_staff, created_on, updated_on)
SELECT gen_random_uuid(), 'Bench video ' || i,
       (ARRAY['ready','ready','ready','ready','ready','ready','processing','error','pending'])
           [1 + i %% 9],
       CASE WHEN i %% 9 = 7 THEN 'Transcoding errored: bench' ELSE '' END,
       now() - (i || ' seconds')::interval, 1700000000 + i, 1700000000 + i,
       CASE WHEN i %% 3 = 0 THEN 'AWS' ELSE 'PEERTUBE' END,
       CASE WHEN i %% 3 = 0 THEN 'AWS' ELSE 'SCALEWAY' END,
       '[240, 480, 720]'::jsonb, 60 + i %% 3600, 1000000 + i,
       jsonb_build_object('thumbnails', jsonb_build_object('720', 'http://bench/' || i || '.jpg'),
                          'manifests', jsonb_build_object('hls', 'http://bench/' || i || '.m3u8')),
       false, now() - (i || ' seconds')::interval, now() - (i || ' seconds')::interval
FROM generate_series(1, %(count)s) AS i
"""
INSERT_TRANSCODED = """
INSERT INTO django_peertube_runner_connector_video
    (id, uuid, state, duration, directory, "baseFilename", "createdAt", "updatedAt")
SELECT gen_random_uuid(), gen_random_uuid(), 1, 60, 'vod/' || v.id || '/video/1', '1', now(), now()
FROM videos_video v
"""
# Ten jobs per transcoded video (cycling), mostly completed, some of every other state.
INSERT_JOBS = """
WITH tv AS (
    SELECT uuid::text AS uuid, row_number() OVER () AS n
    FROM django_peertube_runner_connector_video
), total AS (SELECT count(*) AS c FROM tv)
INSERT INTO django_peertube_runner_connector_runnerjob
    (id, uuid, domain, type, payload, "privatePayload", state, failures, priority, progress,
     runner_id, "createdAt", "updatedAt", "startedAt", "finishedAt")
SELECT gen_random_uuid(), gen_random_uuid(), 'http://bench',
       CASE WHEN i %% 50 = 0 THEN 'video-transcription' ELSE 'vod-hls-transcoding' END,
       jsonb_build_object('output', jsonb_build_object('resolution',
           (ARRAY[240, 480, 720])[1 + i %% 3], 'fps', 30)),
       jsonb_build_object('videoUUID', tv.uuid),
       (ARRAY[3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,4,6,1,2,5])[1 + i %% 20],
       i %% 3, 100, CASE WHEN i %% 20 = 18 THEN 50 ELSE NULL END,
       (SELECT array_agg(id ORDER BY name) FROM django_peertube_runner_connector_runner)
           [1 + i %% 10],
       now() - (i || ' seconds')::interval, now() - (i || ' seconds')::interval,
       now() - (i || ' seconds')::interval, now() - (i || ' seconds')::interval
FROM generate_series(1, %(count)s) AS i
JOIN total ON true
JOIN tv ON tv.n = 1 + i %% total.c
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=100_000)
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="reuse rows already generated")
    parser.add_argument("--only", default="", help="comma-separated label prefixes to time")
    args = parser.parse_args()

    url = os.environ.get(
        "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/marsha_admin_bench"
    )
    database_create(url)
    django_setup(
        database_url=url,
        DJANGO_ALLOWED_HOSTS="testserver",
        DJANGO_DEBUG="False",
        DJANGO_SECURE_SSL_REDIRECT="False",
    )
    from django.test.utils import setup_test_environment

    setup_test_environment()  # responses carry their context (the changelist's row count)
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection, reset_queries
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from marsha_runner.runners.tokens import runner_seed
    from marsha_runner.videos.models import Video

    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM videos_video")
        have_videos = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM django_peertube_runner_connector_runnerjob")
        have_jobs = cursor.fetchone()[0]
    if not (args.keep and have_videos >= args.videos and have_jobs >= args.jobs):
        started = time.monotonic()
        with connection.cursor() as cursor:
            cursor.execute(
                "TRUNCATE videos_video, django_peertube_runner_connector_runnerjob, "
                "django_peertube_runner_connector_video CASCADE"
            )
        for i in range(10):
            runner_seed(
                registration_token="ptrrt-bench", runner_name=f"bench-{i}",
                runner_token=f"ptrt-bench-{i}",
            )  # fmt: skip
        _database_defaults(Video)
        with connection.cursor() as cursor:
            cursor.execute(INSERT_VIDEOS, {"count": args.videos})
            cursor.execute(INSERT_TRANSCODED)
            cursor.execute(INSERT_JOBS, {"count": args.jobs})
        print(f"generated {args.videos} videos and {args.jobs} jobs "
              f"in {time.monotonic() - started:.0f} s")  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")  # what autovacuum keeps up in production

    if not User.objects.filter(username="bench").exists():
        User.objects.create_superuser("bench", "bench@example.org", "bench")
    client = Client()
    client.force_login(User.objects.get(username="bench"))
    from django_peertube_runner_connector.models import Video as TranscodedVideo

    some_video = TranscodedVideo.objects.order_by("createdAt").values_list("directory", flat=True)
    video_id = some_video.first().split("/")[1]
    pages = [
        ("index (health panel)", "/admin/"),
        ("metrics scrape", "/metrics"),
        ("videos", "/admin/videos/video/"),
        ("videos ?state=error", "/admin/videos/video/?upload_state__exact=error"),
        ("videos ?pipeline=AWS", "/admin/videos/video/?transcode_pipeline__exact=AWS"),
        ("videos ?has_error=yes", "/admin/videos/video/?has_error=yes"),
        ("videos search id", f"/admin/videos/video/?q={video_id}"),
        ("videos page 1000", "/admin/videos/video/?p=1000"),
        ("runner jobs", "/admin/runners/runnerjob/"),
        ("runner jobs ?state=pending", "/admin/runners/runnerjob/?state__exact=1"),
        ("runner jobs ?state=errored", "/admin/runners/runnerjob/?state__exact=4"),
        ("runner jobs ?type=transcription", "/admin/runners/runnerjob/?type__exact="
         "video-transcription"),
        ("runner jobs search video id", f"/admin/runners/runnerjob/?q={video_id}"),
        ("runner jobs page 1000", "/admin/runners/runnerjob/?p=1000"),
        ("runners", "/admin/runners/runner/"),
        ("registration tokens", "/admin/runners/runnerregistrationtoken/"),
    ]  # fmt: skip
    if args.only:
        pages = [p for p in pages if p[0].startswith(tuple(args.only.split(",")))]
    print(f"\n{'page':36} {'p50 ms':>8} {'max ms':>8} {'queries':>8} {'rows':>8}")
    for label, path in pages:
        client.get(path)  # warm
        times = []
        for _ in range(args.repeat):
            reset_queries()
            with CaptureQueriesContext(connection) as queries:
                started = time.perf_counter()
                response = client.get(path)
                times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (path, response.status_code)
        cl = response.context.get("cl") if response.context else None
        count = cl.result_count if cl is not None else "-"
        print(
            f"{label:36} {statistics.median(times):8.1f} {max(times):8.1f} "
            f"{len(queries):8} {count!s:>8}"
        )


def _database_defaults(model):
    """Each NOT NULL column with a plain Django default gets it as a database default too, so
    the generator's INSERT names only the columns it fills (new fields keep it working)."""
    from django.db import connection

    with connection.schema_editor() as editor:
        for field in model._meta.concrete_fields:
            if field.null or not field.has_default() or callable(field.default):
                continue
            editor.execute(
                f'ALTER TABLE "{model._meta.db_table}" ALTER COLUMN "{field.column}" '
                f"SET DEFAULT {editor.quote_value(field.default)}"
            )


if __name__ == "__main__":
    main()
