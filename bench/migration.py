"""migrate_to_scaleway against `rclone copy -M`, between the same two SeaweedFS servers (not CI).

Two `weed mini` servers with different credentials stand for AWS and Scaleway (as in the
tests). Data: (a) small objects, 50–500 KB, spread over legacy videos (2,000 over 20 by
default), (b) one legacy video holding one 1 GiB object. For each set, runs alternate within
one invocation (ours with 1 process, rclone, ours with 2 processes, again ``--rounds`` times),
each into a fresh destination bucket, so a load change on the shared machine hits every
contender alike. ``--pin`` puts both servers on CPU 0 and the contenders on the others, as in
production where S3 does not share the copier's CPU (unpinned, the servers take about 80% of
the CPU of rclone's run on 2 cores, and every contender competes with them).

Ours runs as ``manage.py migrate_to_scaleway`` subprocesses (2 processes share the videos
through their leases) on a PostgreSQL database; rclone copies the same keys with
``--transfers 8 --checkers 16 -M`` (-M: metadata kept, as ours does). Each process's peak RSS
and CPU are read by GNU time.

    .venv/bin/python bench/migration.py [--videos 20] [--objects 2000] [--big-mb 1024]
        [--rounds 2] [--concurrency 8] [--only small|big] [--pin]
"""

import argparse
import json
import logging
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

# bench/ is on sys.path as a script; common adds the project
from common import BASE_DIR, database_create

STAMP = 1_600_000_000


class Pattern:
    """A file-like of ``size`` pseudo-random bytes, generated as read (no 1 GB in memory)."""

    def __init__(self, size: int, seed: int):
        self.left, self.random = size, random.Random(seed)

    def read(self, n=-1):
        n = self.left if n < 0 else min(n, self.left)
        self.left -= n
        return self.random.randbytes(n)


CONTENDER_CPUS: list[str] = []  # taskset's prefix under --pin


def start_measured(args, env) -> tuple:
    """A child process under GNU time (its own peak RSS after exec and its CPU)."""
    out = tempfile.TemporaryFile()
    stats = tempfile.NamedTemporaryFile("r")  # noqa: SIM115
    proc = subprocess.Popen(
        [*CONTENDER_CPUS, "/usr/bin/time", "-f", "%M %U %S", "-o", stats.name, *args],
        cwd=BASE_DIR, env=env, stdout=out, stderr=subprocess.PIPE,
    )  # fmt: skip
    return proc, out, stats


def finish_measured(proc, out, stats) -> dict:
    _, err = proc.communicate()
    if proc.returncode != 0:
        sys.exit(f"{proc.args} failed: {err.decode()[-3000:]}")
    rss, user, system = stats.read().split()[-3:]
    out.seek(0)
    return {"rss_MB": int(rss) // 1024, "cpu_s": float(user) + float(system), "out": out.read()}


def run_group(commands: list, env) -> dict:
    """Run the commands at once; wall time, the largest peak RSS, the summed CPU."""
    started = time.monotonic()
    running = [start_measured(args, env) for args in commands]
    results = [finish_measured(*item) for item in running]
    return {
        "s": time.monotonic() - started,
        "rss_MB": max(r["rss_MB"] for r in results),
        "cpu_s": round(sum(r["cpu_s"] for r in results), 1),
        "outs": [r["out"] for r in results],
    }


def rclone_env(aws, scaleway) -> dict:
    # rclone's S3 client refuses AWS_CA_BUNDLE over plain HTTP: the servers are loopback.
    env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
    for name, server in (("SRC", aws), ("DST", scaleway)):
        env.update(
            {
                f"RCLONE_CONFIG_{name}_TYPE": "s3",
                f"RCLONE_CONFIG_{name}_PROVIDER": "SeaweedFS",
                f"RCLONE_CONFIG_{name}_ACCESS_KEY_ID": server.access_key,
                f"RCLONE_CONFIG_{name}_SECRET_ACCESS_KEY": server.secret_key,
                f"RCLONE_CONFIG_{name}_ENDPOINT": server.endpoint,
                f"RCLONE_CONFIG_{name}_REGION": "us-east-1",
            }
        )
    return env


def main():  # noqa: C901, PLR0915  (a script: set up, run, print)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=20)
    parser.add_argument("--objects", type=int, default=2000)
    parser.add_argument("--big-mb", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--only", choices=("small", "big"), default=None)
    parser.add_argument("--pin", action="store_true", help="servers on CPU 0, contenders apart")
    args = parser.parse_args()

    url = os.environ.get(
        "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/marsha_bench_migration"
    )
    database_create(url, fresh=True)
    os.environ.update(
        {
            "DATABASE_URL": url,
            "MARSHA_RUNNER_ENV_FILE": "env.d/test",
            "DJANGO_SETTINGS_MODULE": "marsha_runner.settings",
        }
    )
    from tests.migration.conftest import WeedServer

    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)  # the bench's uploader

    aws, scaleway = WeedServer("aws"), WeedServer("scw")
    try:
        aws.start()
        scaleway.start()
        if args.pin:
            for server in (aws, scaleway):  # every thread of each server
                subprocess.run(["taskset", "-a", "-p", "-c", "0", str(server.proc.pid)],
                               check=True, stdout=subprocess.DEVNULL)  # fmt: skip
            CONTENDER_CPUS.extend(["taskset", "-c", f"1-{os.cpu_count() - 1}"])
        source = aws.bucket()
        base_env = {
            **os.environ,
            "AWS_LEGACY_STORAGE": "s3",
            "VIDEOS_STORAGE": "s3",
            "DJANGO_DEBUG": "False",  # as production runs it: no query log
            **aws.env("AWS_LEGACY_S3", source),
            **scaleway.env("SCALEWAY_S3", scaleway.bucket()),
        }
        os.environ.update(base_env)
        import django

        django.setup()
        from django.core.management import call_command

        from marsha_runner.migration.models import MigrationObject, MigrationVideo
        from marsha_runner.videos.constants import (
            StorageLocation,
            TranscodePipeline,
            UploadState,
        )
        from marsha_runner.videos.models import Video

        call_command("migrate", verbosity=0)

        def legacy_video():
            return Video.objects.create(
                id=uuid.uuid4(),
                title="bench",
                upload_state=UploadState.READY,
                uploaded_on=Video.stamp_to_datetime(STAMP),
                transcode_pipeline=TranscodePipeline.AWS,
                storage_location=StorageLocation.AWS,
                resolutions=[480],
            )

        client = aws.client()
        if args.only == "big":  # no small set to make
            args.objects = args.videos = 0
        sizes = random.Random(8).choices(range(50_000, 500_001), k=args.objects)
        small = [legacy_video() for _ in range(args.videos)]
        with ThreadPoolExecutor(16) as pool:
            list(
                pool.map(
                    lambda item: client.put_object(
                        Bucket=source,
                        Key=f"{small[item[0] % len(small)].legacy_prefix()}cmaf/"
                        f"{STAMP}_{item[0]:05d}.cmfv",
                        Body=random.Random(item[0]).randbytes(item[1]),
                        ContentType="video/mp4",
                        CacheControl="max-age=31536000",
                    ),
                    enumerate(sizes),
                )
            )
        big = legacy_video()
        big_size = args.big_mb * 1024 * 1024 if args.only != "small" else 0
        client.upload_fileobj(
            Pattern(big_size, 1), source, big.legacy_mp4_key(STAMP, 1080),
            ExtraArgs={"ContentType": "video/mp4"},
        )  # fmt: skip
        print(
            f"data: (small) {args.objects} objects ({sum(sizes) / 1e6:.0f} MB) in "
            f"{args.videos} videos; (big) one object of {args.big_mb} MiB"
        )

        def ours(videos, processes):
            Video.objects.filter(pk__in=[v.pk for v in videos]).update(
                storage_location=StorageLocation.AWS
            )
            MigrationObject.objects.all().delete()
            MigrationVideo.objects.all().delete()
            env = {**base_env, **scaleway.env("SCALEWAY_S3", scaleway.bucket())}
            command = [sys.executable, "manage.py", "migrate_to_scaleway", "--json",
                       "--concurrency", str(args.concurrency)]  # fmt: skip
            for video in videos:
                command += ["--video", str(video.pk)]
            run = run_group([command] * processes, env)
            summaries = [json.loads(out) for out in run["outs"]]
            assert sum(s["migrated"] for s in summaries) == len(videos), run["outs"]
            run["copy_s"] = max(s["seconds"] for s in summaries)  # without Django's start
            return run

        def rclone(videos):
            destination = scaleway.bucket()
            prefix = videos[0].legacy_prefix() if len(videos) == 1 else ""
            return run_group(
                [["rclone", "copy", f"src:{source}/{prefix}", f"dst:{destination}/{prefix}",
                  "--transfers", str(args.concurrency), "--checkers", str(args.concurrency * 2),
                  "-M"]],
                rclone_env(aws, scaleway),
            )  # fmt: skip

        sets = {"small": (small, sum(sizes)), "big": ([big], big_size)}
        for name, (videos, total) in sets.items():
            if args.only and name != args.only:
                continue
            load_before = [round(x, 2) for x in os.getloadavg()]
            runs = {"ours_1": [], "rclone": [], "ours_2": []}
            for _ in range(args.rounds):
                runs["ours_1"].append(ours(videos, 1))
                runs["rclone"].append(rclone(videos))
                runs["ours_2"].append(ours(videos, 2))
            figures = {}
            for who, items in runs.items():
                seconds = statistics.median(r["s"] for r in items)
                figures[who] = {
                    "s": [round(r["s"], 2) for r in items],
                    "MBps": round(total / seconds / 1e6, 1),
                    "peak_rss_MB": max(r["rss_MB"] for r in items),
                    "cpu_s": [r["cpu_s"] for r in items],
                }
                if who != "rclone":
                    figures[who]["copy_s"] = [round(r["copy_s"], 2) for r in items]
            rclone_s = [r["s"] for r in runs["rclone"]]
            for who in ("ours_1", "ours_2"):
                # Per round: rclone's time over ours in the same round (above 1: ours faster).
                figures[who]["ratio_per_round"] = [
                    round(r / o["s"], 2) for r, o in zip(rclone_s, runs[who], strict=True)
                ]
                # The same over our copy phase only: what a long run (a cron hour) converges
                # to, the process's start (Python, Django, about 0.6 s of CPU) paid once.
                figures[who]["copy_ratio_per_round"] = [
                    round(r / o["copy_s"], 2) for r, o in zip(rclone_s, runs[who], strict=True)
                ]
            figures["load_avg"] = {
                "before": load_before, "after": [round(x, 2) for x in os.getloadavg()]
            }  # fmt: skip
            figures["pinned"] = args.pin
            print(f"({name}) {json.dumps(figures)}")
        print(
            "ratio = rclone's time / ours, same round (copy_ratio: / our copy phase, the "
            "command's own `seconds`); ours_2 = two processes at once"
        )
    finally:
        aws.cleanup()
        scaleway.cleanup()


if __name__ == "__main__":
    main()
