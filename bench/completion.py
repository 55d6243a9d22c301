"""Completion cost with 1,000 and 1,000,000 jobs in the table, on PostgreSQL (not run by CI).

Each time a rendition completes (and each time the watchdog looks), the runners app reads the
job tree of one transcoded video: is any job still active, and if not, what is the outcome.
The library links jobs to their video only through ``privatePayload.videoUUID`` (JSON); our
migration 0005 indexes the expression ``selectors.JobVideoUUID`` reads. This script fills a
scratch database with finished jobs of other videos (generate_series, server side), adds one
finished three-rendition tree, and times the completion's reads of that tree with and without
the index:

- ``outcome``: ``outcome.transcoding_outcome`` (the jobs, then the rendition rows);
- ``active``: ``selectors.runner_jobs_active_exist`` (the source release's check).

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/marsha_completion_bench \\
        .venv/bin/python bench/completion.py [--calls 200] [--sizes 1000,1000000]
"""

import argparse
import os
import statistics
import time

from common import FINISHED, INSERT_JOBS, database_create, django_setup  # bench/ on sys.path

INDEX = "runners_runnerjob_video_uuid_text"
TABLE = "django_peertube_runner_connector_runnerjob"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--sizes", default="1000,1000000")
    args = parser.parse_args()

    url = os.environ.get(
        "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/marsha_completion_bench"
    )
    database_create(url)
    django_setup(database_url=url)
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    from marsha_runner.runners.outcome import transcoding_outcome
    from marsha_runner.runners.selectors import runner_jobs_active_exist

    def timed(video):
        reads = {"outcome": [], "active": []}
        for _ in range(20):  # warm-up
            transcoding_outcome(video=video)
        for _ in range(args.calls):
            started = time.perf_counter()
            outcome = transcoding_outcome(video=video)
            reads["outcome"].append((time.perf_counter() - started) * 1000)
            assert outcome is not None and outcome.succeeded, outcome
            started = time.perf_counter()
            assert not runner_jobs_active_exist(video_uuid=video.uuid)
            reads["active"].append((time.perf_counter() - started) * 1000)
        return {name: _p50_p95(samples) for name, samples in reads.items()}

    def sql(statement, params=None):
        with connection.cursor() as cursor:
            cursor.execute(statement, params)

    print(
        f"Completion reads of one 3-job tree over {args.calls} calls (ms, p50/p95), "
        f"PostgreSQL {url.rsplit('/', 1)[1]}"
    )
    for size in [int(s) for s in args.sizes.split(",")]:
        sql(f"TRUNCATE {TABLE}, django_peertube_runner_connector_video CASCADE")
        started = time.perf_counter()
        sql(INSERT_JOBS, [FINISHED, size])
        video = _finished_tree()
        sql(f"ANALYZE {TABLE}")
        filled = time.perf_counter() - started
        with_index = timed(video)
        sql(f"DROP INDEX {INDEX}")
        sql(f"ANALYZE {TABLE}")
        without_index = timed(video)
        sql(f"CREATE INDEX {INDEX} ON {TABLE} ((\"privatePayload\" ->> 'videoUUID'))")
        sql(f"ANALYZE {TABLE}")
        print(f"{size:>9,} jobs in the table (filled in {filled:.1f}s):")
        for name in ("outcome", "active"):
            (p50, p95), (q50, q95) = with_index[name], without_index[name]
            print(
                f"    {name:<8} with index p50 {p50:7.2f} p95 {p95:7.2f} | "
                f"without p50 {q50:8.2f} p95 {q95:8.2f}"
            )


def _p50_p95(samples):
    samples = sorted(samples)
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


def _finished_tree():
    """A transcoded video whose three renditions completed, as the handler leaves them."""
    from django_peertube_runner_connector.models import (
        RunnerJob,
        RunnerJobState,
        Video,
        VideoFile,
        VideoStreamingPlaylist,
    )

    from marsha_runner.runners.handlers import HLSTranscodingJobHandler

    video = Video.objects.create(state=2, directory="vod/bench/video/1", baseFilename="1")
    playlist = VideoStreamingPlaylist.objects.create(video=video)
    handler = HLSTranscodingJobHandler()
    parent = handler.create(
        video=video, resolution=720, fps=30, depends_on_runner_job=None, domain="http://bench"
    )
    for resolution in (480, 240):
        handler.create(
            video=video,
            resolution=resolution,
            fps=30,
            depends_on_runner_job=parent,
            domain="http://bench",
        )
    RunnerJob.objects.filter(privatePayload__videoUUID=str(video.uuid)).update(
        state=RunnerJobState.COMPLETED
    )
    for resolution in (720, 480, 240):
        VideoFile.objects.create(
            video=video,
            streamingPlaylist=playlist,
            resolution=resolution,
            filename=f"vod/bench/video/1/1-{resolution}-fragmented.mp4",
            extname=".mp4",
            size=1000,
            fps=30,
        )
    return video


if __name__ == "__main__":
    main()
