"""CPU per object call, boto3 against the migration's plain signed HTTP (not CI).

One `weed mini` server (as the tests start it); ``--objects`` objects of ``--size`` bytes are
read and written again, one after the other, through a boto3 client configured as the
migration's (unsigned payload, checksums when required) and through ``S3Store`` with
``MIGRATION_PLAIN_HTTP`` on. Prints the process CPU per call (GET or PUT) and the wall time of
each pass, the passes alternating ``--rounds`` times.

    .venv/bin/python bench/s3_calls.py [--objects 300] [--size 200000] [--rounds 2]
"""

import argparse
import os
import random
import sys
import time

# bench/ is on sys.path as a script; common adds the project
import common  # noqa: F401  (puts the project on sys.path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=300)
    parser.add_argument("--size", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("MARSHA_RUNNER_ENV_FILE", "env.d/test")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marsha_runner.settings")
    import django

    django.setup()
    from storages.backends.s3 import S3Storage

    from marsha_runner.migration.stores import S3Store
    from tests.migration.conftest import WeedServer

    server = WeedServer("calls").start()
    try:
        bucket = server.bucket()
        store = S3Store(S3Storage(**server.options(bucket)))
        if store.http is None:
            sys.exit("MIGRATION_PLAIN_HTTP is off: nothing to compare")
        bodies = [random.Random(n).randbytes(args.size) for n in range(10)]
        for n in range(args.objects):
            store.client.put_object(
                Bucket=bucket, Key=f"src/{n}", Body=bodies[n % 10], ContentType="video/mp4"
            )

        def through_boto3(n):
            answer = store.client.get_object(Bucket=bucket, Key=f"src/{n}")
            data = answer["Body"].read()
            store.client.put_object(
                Bucket=bucket, Key=f"boto3/{n}", Body=data, ContentType=answer["ContentType"]
            )

        def plain_http(n):
            data, metadata = store.read_with_metadata(f"src/{n}")
            store.write(f"plain/{n}", data, metadata)

        for _ in range(args.rounds):
            for name, copy in (("boto3", through_boto3), ("plain HTTP", plain_http)):
                wall, cpu = time.monotonic(), time.process_time()
                for n in range(args.objects):
                    copy(n)
                cpu_per_call = (time.process_time() - cpu) / (2 * args.objects)
                print(
                    f"{name}: {cpu_per_call * 1000:.3f} ms of CPU per call, "
                    f"{time.monotonic() - wall:.2f} s for {args.objects} GET + PUT "
                    f"of {args.size} bytes"
                )
    finally:
        server.cleanup()


if __name__ == "__main__":
    main()
