"""migrate_to_scaleway against `rclone copy`, between the same two SeaweedFS servers (not CI).

Two `weed mini` servers with different credentials stand for AWS and Scaleway (as in the
tests). On the same data, in one run: (a) 2,000 objects of 50–500 KB under one legacy video,
(b) one object of 1 GB. Each copy is timed; the command runs as a subprocess whose peak RSS is
read from wait4(). rclone (Debian's) copies the same prefix to another folder of the
destination bucket with as many transfers as the command has workers.

    .venv/bin/python bench/migration.py [--objects 2000] [--big-mb 1024] [--concurrency 8]
"""

import argparse
import json
import logging
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import BASE_DIR  # bench/ is on sys.path as a script; common adds the project

STAMP = 1_600_000_000


class Pattern:
    """A file-like of ``size`` pseudo-random bytes, generated as read (no 1 GB in memory)."""

    def __init__(self, size: int, seed: int):
        self.left, self.random = size, random.Random(seed)

    def read(self, n=-1):
        n = self.left if n < 0 else min(n, self.left)
        self.left -= n
        return self.random.randbytes(n)


def run_measured(args, env) -> tuple[float, int, str]:
    """(seconds, peak RSS in MB, stdout) of a child process, by GNU time (its own peak after
    exec, not the forked copy of this process that getrusage would count)."""
    started = time.monotonic()
    with tempfile.TemporaryFile() as out, tempfile.NamedTemporaryFile("r") as peak:
        proc = subprocess.run(
            ["/usr/bin/time", "-f", "%M", "-o", peak.name, *args],
            cwd=BASE_DIR, env=env, stdout=out, stderr=subprocess.PIPE, check=False,
        )  # fmt: skip
        seconds = time.monotonic() - started
        if proc.returncode != 0:
            sys.exit(f"{args[:3]} failed: {proc.stderr.decode()[-2000:]}")
        out.seek(0)
        return seconds, int(peak.read().split()[-1]) // 1024, out.read().decode()


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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=2000)
    parser.add_argument("--big-mb", type=int, default=1024)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    os.environ.setdefault("MARSHA_RUNNER_ENV_FILE", "env.d/test")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marsha_runner.settings")
    workdir = Path(tempfile.mkdtemp(prefix="marsha-bench-migration-"))
    os.environ["DATABASE_URL"] = f"sqlite:///{workdir / 'bench.sqlite3'}"
    from tests.migration.conftest import WeedServer

    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)  # the bench's uploader

    aws, scaleway = WeedServer("aws"), WeedServer("scw")
    try:
        aws.start()
        scaleway.start()
        source, destination = aws.bucket(), scaleway.bucket()
        env = {
            **os.environ,
            "AWS_LEGACY_STORAGE": "s3",
            "VIDEOS_STORAGE": "s3",
            **aws.env("AWS_LEGACY_S3", source),
            **scaleway.env("SCALEWAY_S3", destination),
        }
        os.environ.update(env)
        import django

        django.setup()
        from django.core.management import call_command

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
        sizes = random.Random(8).choices(range(50_000, 500_001), k=args.objects)
        small = legacy_video()
        with ThreadPoolExecutor(16) as pool:
            list(
                pool.map(
                    lambda item: client.put_object(
                        Bucket=source,
                        Key=f"{small.legacy_prefix()}cmaf/{STAMP}_{item[0]:05d}.cmfv",
                        Body=random.Random(item[0]).randbytes(item[1]),
                    ),
                    enumerate(sizes),
                )
            )
        big = legacy_video()
        big_size = args.big_mb * 1024 * 1024
        client.upload_fileobj(Pattern(big_size, 1), source, big.legacy_mp4_key(STAMP, 1080))
        print(f"data: {args.objects} objects ({sum(sizes) / 1e6:.0f} MB), one of {args.big_mb} MB")

        figures = {}
        for name, video, total in (("a", small, sum(sizes)), ("b", big, big_size)):
            prefix = video.legacy_prefix()
            ours, rss, out = run_measured(
                [sys.executable, "manage.py", "migrate_to_scaleway", "--json",
                 "--video", str(video.id), "--concurrency", str(args.concurrency)],
                env,
            )  # fmt: skip
            summary = json.loads(out)
            assert summary["migrated"] == 1, summary
            rclone, rclone_rss, _ = run_measured(
                ["rclone", "copy", f"src:{source}/{prefix}", f"dst:{destination}/rclone/{prefix}",
                 "--transfers", str(args.concurrency), "--checkers", str(args.concurrency * 2)],
                rclone_env(aws, scaleway),
            )  # fmt: skip
            figures[name] = {
                "bytes": total,
                "migrate_s": round(ours, 2),  # the whole process, Django start included
                "migrate_copy_s": summary["seconds"],  # the command's own figure
                "migrate_MBps": round(total / ours / 1e6, 1),
                "migrate_peak_rss_MB": rss,
                "rclone_s": round(rclone, 2),
                "rclone_MBps": round(total / rclone / 1e6, 1),
                "rclone_peak_rss_MB": rclone_rss,
                "ratio": round(rclone / ours, 2),
            }
            print(f"({name}) {json.dumps(figures[name])}")
        print("ratio = rclone time / migrate_to_scaleway time (above 1: the command is faster)")
    finally:
        aws.cleanup()
        scaleway.cleanup()


if __name__ == "__main__":
    main()
