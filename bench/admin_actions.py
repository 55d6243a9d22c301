"""The staff's Re-trigger, Switch to PEERTUBE and Transcode missing on a 1 GiB source on S3
(SeaweedFS): how long the confirmed POST takes, and whether upload-ended on the same video
waits meanwhile (not run by CI; it prints figures).

Each action's POST goes through the admin (Django test client, a superuser) with a real
Celery broker (Redis, not eager): the POST records the intent and enqueues the launch. While
each POST runs, and then while the launch task does its I/O (the Switch's 1 GiB CopyObject
from the AWS bucket into the video bucket, then ffprobe), another thread calls upload-ended
on the same video every 20 ms (``video_upload_ended``: it locks the video's row) and the
slowest call is reported. For reference, the copy the POST used to make under the row lock
(a streamed download and upload of the 1 GiB object) is timed too.

    CI_REDIS_DB=4 bash .ci/services.sh \\
        .venv/bin/python bench/admin_actions.py [--size-mb 1024] [--repeat 5]

BENCH_DATABASE_URL names a scratch database (default marsha_actions_bench on 127.0.0.1).
"""

import argparse
import json
import os
import random
import statistics
import sys
import threading
import time
import uuid

STAMP = 1_700_000_000
# The columns an action changes: put back before each repeat.
RESTORED = (
    "upload_state", "upload_error_reason", "processing_stamp", "launched_stamp",
    "transcode_source", "processing_by_staff",
)  # fmt: skip


class Pattern:
    """A file-like of ``size`` pseudo-random bytes, generated as read (no 1 GiB in memory)."""

    def __init__(self, size: int, seed: int = 16):
        self.left, self.random = size, random.Random(seed)

    def read(self, n=-1):
        n = self.left if n < 0 else min(n, self.left)
        self.left -= n
        return self.random.randbytes(n)


class UploadEndedProbe(threading.Thread):
    """Calls upload-ended on one video every 20 ms until stopped; keeps the slowest call."""

    def __init__(self, video_id, file_key):
        super().__init__(daemon=True)
        self.video_id, self.file_key = video_id, file_key
        self.stop, self.calls, self.slowest = threading.Event(), 0, 0.0
        self.refused = 0

    def run(self):
        from django.db import connection

        from marsha_runner.videos.transitions import VideoRefused
        from marsha_runner.videos.upload import video_upload_ended

        while not self.stop.is_set():
            started = time.perf_counter()
            try:  # it locks the row either way; a new stamp makes this key a stale one
                video_upload_ended(video_id=self.video_id, file_key=self.file_key)
            except VideoRefused:
                self.refused += 1
            self.slowest = max(self.slowest, time.perf_counter() - started)
            self.calls += 1
            self.stop.wait(0.02)
        connection.close()

    def finish(self) -> dict:
        self.stop.set()
        self.join()
        return {"upload_ended_calls": self.calls, "upload_ended_slowest_s": round(self.slowest, 3)}


def while_probing(video, work):
    """Run ``work()`` while upload-ended is called on ``video``; (seconds, result, probe)."""
    video.refresh_from_db()
    probe = UploadEndedProbe(video.id, video.source_key(video.processing_stamp))
    probe.start()
    time.sleep(0.1)  # the probe is calling before the work starts
    started = time.perf_counter()
    result = work()
    seconds = time.perf_counter() - started
    return seconds, result, probe.finish()


def setup(size):
    for name in ("REDIS_URL", "S3_TEST_ENDPOINT"):
        if not os.environ.get(name):
            sys.exit(f"{name} is not set: run through `bash .ci/services.sh`.")
    import boto3
    from common import database_create, django_setup

    url = os.environ.get(
        "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/marsha_actions_bench"
    )
    database_create(url, fresh=True)
    django_setup(
        database_url=url,
        REDIS_URL=os.environ["REDIS_URL"],  # a real broker: the POST only enqueues
        CELERY_TASK_ALWAYS_EAGER="False",
        DJANGO_ALLOWED_HOSTS="testserver",
    )
    from django.conf import settings
    from django.core.files.storage import storages
    from django.core.management import call_command

    endpoint = os.environ["S3_TEST_ENDPOINT"]
    keys = {
        "access_key": os.environ.get("S3_TEST_ACCESS_KEY", ""),
        "secret_key": os.environ.get("S3_TEST_SECRET_KEY", ""),
    }
    client = boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id=keys["access_key"], aws_secret_access_key=keys["secret_key"],
    )  # fmt: skip
    run = uuid.uuid4().hex[:8]
    buckets = {"videos": f"bench-videos-{run}", "aws_legacy": f"bench-legacy-{run}"}
    for bucket in buckets.values():
        client.create_bucket(Bucket=bucket)
    settings.STORAGE_BACKEND = "marsha_runner.storage.s3"
    settings.STORAGES = {
        **settings.STORAGES,
        **{
            alias: {
                "BACKEND": "marsha_runner.storage.s3.VideoS3Storage",
                "OPTIONS": {
                    "bucket_name": bucket, "endpoint_url": endpoint, "region_name": "us-east-1",
                    "addressing_style": "path", "signature_version": "s3v4",
                    "querystring_auth": True, "file_overwrite": True, **keys,
                },
            }
            for alias, bucket in buckets.items()
        },
    }  # fmt: skip
    storages._storages = {}
    storages.backends  # noqa: B018  (re-read settings.STORAGES; the library follows: one cache)
    call_command("migrate", verbosity=0)

    started = time.perf_counter()
    client.upload_fileobj(Pattern(size), buckets["videos"], "bench/source")
    print(f"uploaded the {size / 2**20:.0f} MiB source in {time.perf_counter() - started:.1f} s")
    return client, buckets


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=5, help="POSTs per action")
    args = parser.parse_args()
    client, buckets = setup(args.size_mb * 2**20)

    from django.contrib.auth.models import User
    from django.test import Client

    from marsha_runner.storage import legacy_storage, storage_replace, video_storage
    from marsha_runner.videos.constants import StorageLocation, TranscodePipeline, UploadState
    from marsha_runner.videos.launch import video_launch_source, video_launch_transcoding
    from marsha_runner.videos.models import Video

    def place(bucket, key):
        client.copy({"Bucket": buckets["videos"], "Key": "bench/source"}, bucket, key)

    served = Video.stamp_to_datetime(STAMP)
    errored = Video.objects.create(
        title="Bench errored", upload_state=UploadState.ERROR, upload_error_reason="bench",
        processing_stamp=STAMP, launched_stamp=STAMP,
    )  # fmt: skip
    place(buckets["videos"], errored.source_key(STAMP))
    legacy = Video.objects.create(
        title="Bench legacy", upload_state=UploadState.READY, uploaded_on=served,
        transcode_pipeline=TranscodePipeline.AWS, storage_location=StorageLocation.AWS,
        resolutions=[720], processing_stamp=STAMP, launched_stamp=STAMP,
    )  # fmt: skip
    place(buckets["aws_legacy"], legacy.legacy_mp4_key(STAMP, 720))
    ready = Video.objects.create(
        title="Bench ready", upload_state=UploadState.READY, uploaded_on=served,
        transcode_pipeline=TranscodePipeline.PEERTUBE, resolutions=[720],
        processing_stamp=STAMP, launched_stamp=STAMP,
    )  # fmt: skip
    place(buckets["videos"], ready.source_key(STAMP))

    User.objects.filter(username="bench").delete()
    browser = Client()
    browser.force_login(User.objects.create_superuser("bench", "bench@example.org", "bench"))
    browser.get("/admin/videos/video/")  # warm: imports, templates, the admin's URL map
    results = {}
    for action, video in (
        ("retranscode", errored),
        ("switch_to_peertube", legacy),
        ("transcode_missing", ready),
    ):
        before = Video.objects.filter(pk=video.pk).values(*RESTORED).get()
        form = {"action": action, "_selected_action": [str(video.pk)], "index": "0"}
        confirmations, posts, slowest, calls = [], [], 0.0, 0
        for _ in range(args.repeat):
            Video.objects.filter(pk=video.pk).update(**before)  # the same start each time
            started = time.perf_counter()
            page = browser.post("/admin/videos/video/", form)
            confirmations.append(time.perf_counter() - started)
            assert page.status_code == 200, page.status_code
            confirmed = {**form, "confirmed": "yes"}
            seconds, response, probe = while_probing(
                video, lambda data=confirmed: browser.post("/admin/videos/video/", data)
            )
            assert response.status_code == 302, response.status_code
            video.refresh_from_db()
            assert video.upload_state == UploadState.PROCESSING, (action, video.upload_state)
            posts.append(seconds)
            slowest = max(slowest, probe["upload_ended_slowest_s"])
            calls += probe["upload_ended_calls"]
        results[action] = {
            "confirmation_page_s_median": round(statistics.median(confirmations), 3),
            "confirmed_post_s_median": round(statistics.median(posts), 3),
            "confirmed_post_s_max": round(max(posts), 3),
            "upload_ended_calls": calls,
            "upload_ended_slowest_s": slowest,
        }

    # The launch task of the Switch: the 1 GiB CopyObject into the video bucket, then ffprobe
    # (random bytes: the launch ends in "unreadable", the video stays ready), upload-ended
    # called on the same video all along.
    legacy.refresh_from_db()
    stamp = legacy.processing_stamp
    seconds, _result, probe = while_probing(
        legacy, lambda: video_launch_source(video=legacy, stamp=stamp)
    )
    results["switch_task_copy"] = {"copy_s": round(seconds, 3), **probe}
    seconds, _result, probe = while_probing(
        legacy, lambda: video_launch_transcoding(video_id=legacy.id, stamp=stamp)
    )
    legacy.refresh_from_db()
    results["switch_task_launch"] = {
        "launch_s": round(seconds, 3), "video_after": legacy.upload_state, **probe,
    }  # fmt: skip

    # For reference: the copy the POST used to make under the row lock (streamed).
    started = time.perf_counter()
    with legacy_storage().open(legacy.legacy_mp4_key(STAMP, 720), "rb") as handle:
        storage_replace(video_storage(), "bench/streamed-copy", handle)
    results["old_in_request_streamed_copy_s"] = round(time.perf_counter() - started, 1)

    print(json.dumps(results, indent=2))
    from celery import current_app

    current_app.control.purge()  # the launches the POSTs enqueued: nobody works them here
    for bucket in buckets.values():
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for item in page.get("Contents", []):
                client.delete_object(Bucket=bucket, Key=item["Key"])
        client.delete_bucket(Bucket=bucket)


if __name__ == "__main__":
    main()
