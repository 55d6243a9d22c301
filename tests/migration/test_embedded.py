"""Legacy media on the embedded default (folders) and HLS of migrated media from S3."""

import subprocess
from io import StringIO
from pathlib import Path

import pytest
import requests
from django.core.files.storage import storages
from django.core.management import call_command
from django.core.management.base import CommandError

from marsha_runner.videos.constants import StorageLocation, TranscodePipeline
from marsha_runner.videos.legacy_seed import legacy_video_seed
from marsha_runner.videos.models import Video
from tests.conftest import public_read

BASE_DIR = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.ffmpeg]


def decode(url: str):
    done = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", url, "-f", "null", "-"], capture_output=True, timeout=120
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-800:]


def test_make_run_seeds_legacy_videos():
    """`make run`'s seed step runs seed_legacy_videos (read from the Makefile, dry)."""
    done = subprocess.run(
        ["make", "-n", "seed"], cwd=BASE_DIR, capture_output=True, text=True, check=True
    )
    assert "manage.py seed_legacy_videos" in done.stdout


def test_seed_refuses_with_debug_off(settings, legacy_root):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG is off"):
        call_command("seed_legacy_videos", stdout=StringIO())


def test_seeded_legacy_videos_play_and_migrate_on_the_filesystem(
    videos_root, legacy_root, live_server_url, settings
):
    settings.DEBUG = True  # a dev machine, as `make run`
    call_command("seed_legacy_videos", "--count", "2", "--seconds", "2", stdout=StringIO())
    videos = list(Video.objects.filter(transcode_pipeline=TranscodePipeline.AWS))
    assert len(videos) == 2
    for video in videos:
        assert video.storage_location == StorageLocation.AWS
        hls = video.urls["manifests"]["hls"]
        assert hls.startswith(f"/aws-legacy/{video.id}/cmaf/") and str(legacy_root) not in hls
        decode(live_server_url + hls)  # the legacy CMAF/HLS plays, served with Range
    legacy_files = sorted(
        p.relative_to(legacy_root) for p in legacy_root.rglob("*") if p.is_file()
    )
    assert len(legacy_files) > 20  # mp4s, playlists, segments, thumbnails, previews

    out = StringIO()
    call_command("migrate_to_scaleway", stdout=out)

    assert "2 migrated, 0 skipped, 0 failed" in out.getvalue()
    for video in videos:
        video.refresh_from_db()
        assert video.storage_location == StorageLocation.SCALEWAY
        assert video.urls["mp4"]["240"] == f"/videos/aws/{video.id}/mp4/1600000000_240.mp4"
        decode(live_server_url + video.urls["manifests"]["hls"])
    for relative in legacy_files:
        copy = videos_root / "aws" / relative
        assert copy.read_bytes() == (legacy_root / relative).read_bytes()
    # The seed is idempotent and leaves migrated videos alone.
    call_command("seed_legacy_videos", "--count", "2", "--seconds", "2", stdout=StringIO())
    assert Video.objects.filter(storage_location=StorageLocation.SCALEWAY).count() == 2


@pytest.mark.s3
@pytest.mark.django_db(transaction=True)  # the run's video threads have their own connections
def test_migrated_hls_plays_from_s3_with_public_read_prefix(buckets):
    """The documented default: aws/ (and vod/) public-read; ffmpeg follows the master
    playlist's relative paths by plain URLs, after the presign lifetime is long gone."""
    video, _ = legacy_video_seed(title="legacy on s3", seconds=2)
    public_read(buckets.destination_client, buckets.destination_bucket, "vod/", "aws/")

    out = StringIO()
    call_command("migrate_to_scaleway", stdout=out)

    video.refresh_from_db()
    assert video.storage_location == StorageLocation.SCALEWAY, out.getvalue()
    hls = video.urls["manifests"]["hls"]
    assert "X-Amz-" not in hls
    decode(hls)
    assert requests.get(video.urls["previews"], timeout=10).status_code == 200
    assert storages["videos"].exists(f"aws/{video.legacy_manifest_key(1600000000)}")


@pytest.mark.s3
def test_legacy_hls_plays_from_private_buckets(
    buckets, settings, live_server_url, client, django_user_model
):
    """VIDEOS_SIGN_URLS_AT_READ, no public-read anywhere: ffmpeg decodes the CMAF master
    through the API's URL (our playlist view) from the AWS bucket, then after migration from
    the Scaleway bucket's aws/."""
    settings.VIDEOS_SIGN_URLS_AT_READ = True
    video, _ = legacy_video_seed(title="legacy private", seconds=2)
    client.force_login(django_user_model.objects.create_superuser("staff", "s@x.org", "pw"))

    def api_hls():
        hls = client.get(f"/api/videos/{video.id}/").json()["urls"]["manifests"]["hls"]
        assert hls.startswith(f"/api/videos/{video.id}/hls/"), hls
        return f"{live_server_url}{hls}"

    decode(api_hls())
    call_command("migrate_to_scaleway", stdout=StringIO())
    video.refresh_from_db()
    assert video.storage_location == StorageLocation.SCALEWAY
    assert requests.get(video.urls["manifests"]["hls"], timeout=10).status_code == 403  # private
    decode(api_hls())
