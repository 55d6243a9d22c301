"""Legacy videos in the legacy bucket, and the checks every migration test makes."""

import datetime
import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from io import StringIO

from django.core.management import call_command
from django.core.management.base import CommandError

from marsha_runner.videos.constants import StorageLocation, TranscodePipeline, UploadState
from marsha_runner.videos.media_urls import video_refresh_urls
from marsha_runner.videos.models import Video

STAMP = 1_600_000_000
BIG = 50 * 1024 * 1024
METADATA = {
    "ContentType": "video/mp4",
    "CacheControl": "max-age=31536000",
    "ContentDisposition": 'attachment; filename="clip.mp4"',
    "ContentEncoding": "identity",
    "ContentLanguage": "fr-FR",
    "Expires": datetime.datetime(2031, 5, 4, 3, 2, 1, tzinfo=datetime.UTC),
    "Metadata": {"origin": "mediaconvert", "job": "1234"},
}
# Every field of an object the copy must keep, as head_object names them.
METADATA_FIELDS = (*METADATA, "ExpiresString")


def legacy_video(buckets, *, segments=10, big=False, resolutions=(240, 480)) -> Video:
    """A ready legacy video in AWS with the legacy key layout (playlists, segments, mp4 per
    resolution, thumbnails, preview); ``big`` adds one 50 MB mp4 with metadata."""
    video = Video.objects.create(
        title="legacy",
        upload_state=UploadState.READY,
        uploaded_on=Video.stamp_to_datetime(STAMP),
        transcode_pipeline=TranscodePipeline.AWS,
        storage_location=StorageLocation.AWS,
        resolutions=list(resolutions),
    )
    prefix = video.legacy_prefix()
    buckets.put(
        video.legacy_manifest_key(STAMP), b"#EXTM3U\n", ContentType="application/x-mpegURL"
    )
    for resolution in resolutions:
        buckets.put(f"{prefix}cmaf/{STAMP}_{resolution}.m3u8", b"#EXTM3U\n#EXT-X-VERSION:7\n")
        buckets.put(video.legacy_mp4_key(STAMP, resolution), f"mp4 {resolution}".encode() * 999,
                    **METADATA)  # fmt: skip
        buckets.put(video.legacy_thumbnail_key(STAMP, resolution), b"\xff\xd8jpeg",
                    ContentType="image/jpeg")  # fmt: skip
    buckets.put(video.legacy_preview_key(STAMP), b"\xff\xd8preview", ContentType="image/jpeg")
    with ThreadPoolExecutor(16) as pool:
        list(
            pool.map(
                lambda n: buckets.put(
                    f"{prefix}cmaf/{STAMP}_240_{n:05d}.cmfv", f"segment {n} ".encode() * 20
                ),
                range(segments),
            )
        )
    if big:
        data = (hashlib.sha256(b"seed").digest() * (BIG // 32 + 1))[:BIG]
        buckets.put(f"{prefix}mp4/{STAMP}_1080.mp4", data, **METADATA)
    video_refresh_urls(video=video)
    return video


def run_json(*args) -> tuple[dict, int]:
    out = StringIO()
    code = 0
    try:
        call_command("migrate_to_scaleway", "--json", *args, stdout=out)
    except CommandError as err:
        code = err.returncode
    return json.loads(out.getvalue()), code


def assert_identical(buckets, video: Video):
    """Every source object has a byte-identical copy under aws/, metadata included."""
    source = buckets.source_keys(video.legacy_prefix())
    copies = buckets.destination_keys(Video.migrated_key(video.legacy_prefix()))
    assert len(copies) == len(source)
    for key in source:
        original = buckets.source_client.get_object(Bucket=buckets.source_bucket, Key=key)
        copy = buckets.destination_client.get_object(
            Bucket=buckets.destination_bucket, Key=Video.migrated_key(key)
        )
        assert copy["Body"].read() == original["Body"].read(), key
        for name in METADATA_FIELDS:
            assert copy.get(name) == original.get(name), (key, name)
