"""Persisted URLs: never signed, never a disk path, right for each (pipeline, location) pair.

``backfill_urls`` recomputes them in batches with a bounded number of queries.
"""

import json
import time
import uuid
from io import StringIO

import pytest
import requests
from django.core import checks
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, storages
from django.core.management import call_command
from django.core.management.base import CommandError

from marsha_runner.videos import backfill, media_urls
from marsha_runner.videos.constants import StorageLocation, TranscodePipeline, UploadState
from marsha_runner.videos.models import SubtitleTrack, Video
from tests.conftest import public_read, reset_video_storage

pytestmark = pytest.mark.django_db
STAMP = 1_700_000_000


class SigningStorage(FileSystemStorage):
    """A storage whose URLs carry a signature (like a CloudFront signer): must be refused."""

    def url(self, name):
        return f"https://cdn.example/{name}?Expires=1&Signature=abc"


def error_ids():
    return sorted(m.id for m in checks.run_checks() if m.level >= checks.ERROR)


def test_check_refuses_a_storage_that_would_persist_signed_urls(settings):
    settings.STORAGES = {**settings.STORAGES, "videos": {"BACKEND": f"{__name__}.SigningStorage"}}

    assert "marsha_runner.storage.E004" in error_ids()


def test_check_refuses_a_disk_path_as_url(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "aws_legacy": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path), "base_url": f"{tmp_path}/"},
        },
    }
    assert "marsha_runner.storage.E004" in error_ids()


def test_check_accepts_a_signing_s3_storage_because_persisted_urls_are_unsigned(s3_videos):
    """querystring_auth signs internal reads only: the persisted URL has no signature."""
    storage = storages["videos"]
    assert "X-Amz-Signature" in storage.url("vod/x")
    assert "marsha_runner.storage.E004" not in error_ids()


def ready_video(*, pipeline, location, resolutions=(240, 480), urls=None) -> Video:
    return Video.objects.create(
        title="v",
        upload_state=UploadState.READY,
        uploaded_on=Video.stamp_to_datetime(STAMP),
        transcode_pipeline=pipeline,
        storage_location=location,
        resolutions=list(resolutions),
        urls=urls,
    )


def test_backfill_gives_each_pipeline_and_location_its_urls(videos_root, legacy_root):
    peertube = ready_video(pipeline=TranscodePipeline.PEERTUBE, location=None)
    storages["videos"].save(peertube.thumbnail_key(STAMP), ContentFile(b"jpg"))
    legacy = ready_video(pipeline=TranscodePipeline.AWS, location=StorageLocation.AWS)
    migrated = ready_video(pipeline=TranscodePipeline.AWS, location=StorageLocation.SCALEWAY)
    pending = Video.objects.create(title="not yet")

    out = StringIO()
    call_command("backfill_urls", "--json", stdout=out)

    assert json.loads(out.getvalue())["changed"] == 3
    buster = "16f298ad96df"  # sha256("240,480")[:12]: changes with the rendition list
    peertube.refresh_from_db()
    assert peertube.urls == {
        "manifests": {"hls": f"/videos/vod/{peertube.id}/video/{STAMP}/master.m3u8?v={buster}"},
        "mp4": {
            str(r): f"/videos/vod/{peertube.id}/video/{STAMP}/{STAMP}-{r}-fragmented.mp4"
            for r in (240, 480)
        },
        "thumbnails": {
            str(r): f"/videos/vod/{peertube.id}/video/{STAMP}/thumbnail.jpg" for r in (240, 480)
        },
    }
    for video, prefix in ((legacy, "/aws-legacy/"), (migrated, "/videos/aws/")):
        video.refresh_from_db()
        base = f"{prefix}{video.id}"
        assert video.urls == {
            "manifests": {"hls": f"{base}/cmaf/{STAMP}.m3u8?v={buster}"},
            "mp4": {str(r): f"{base}/mp4/{STAMP}_{r}.mp4" for r in (240, 480)},
            "thumbnails": {
                str(r): f"{base}/thumbnails/{STAMP}_{r}.0000000.jpg" for r in (240, 480)
            },
            "previews": f"{base}/previews/{STAMP}_100.jpg",
        }
    pending.refresh_from_db()
    assert pending.urls is None
    for video in (peertube, legacy, migrated):
        for url in [*video.urls["mp4"].values(), video.urls["manifests"]["hls"]]:
            assert str(videos_root) not in url and str(legacy_root) not in url

    again = StringIO()
    call_command("backfill_urls", "--json", stdout=again)
    assert json.loads(again.getvalue())["changed"] == 0


def test_backfill_filters_and_dry_run(videos_root, legacy_root):
    legacy = ready_video(pipeline=TranscodePipeline.AWS, location=StorageLocation.AWS)
    peertube = ready_video(pipeline=TranscodePipeline.PEERTUBE, location=None)

    out = StringIO()
    call_command("backfill_urls", "--dry-run", "--json", "--pipeline", "AWS", stdout=out)
    assert json.loads(out.getvalue()) | {"seconds": 0} == {
        "videos": 1,
        "changed": 1,
        "raced": 0,
        "dry_run": True,
        "seconds": 0,
    }
    legacy.refresh_from_db()
    assert legacy.urls is None  # dry run wrote nothing

    call_command("backfill_urls", "--video", str(peertube.id), stdout=StringIO())
    legacy.refresh_from_db()
    peertube.refresh_from_db()
    assert legacy.urls is None and peertube.urls is not None

    call_command("backfill_urls", "--location", "AWS", "--state", "ready", stdout=StringIO())
    legacy.refresh_from_db()
    assert legacy.urls["manifests"]["hls"].startswith("/aws-legacy/")


def test_backfill_bad_input_is_a_command_error():
    with pytest.raises(CommandError, match=r"^--batch-size must be at least 1\.$"):
        call_command("backfill_urls", "--batch-size", "0")
    with pytest.raises(CommandError, match="argument --video: invalid UUID value: 'not-a-uuid'"):
        call_command("backfill_urls", "--video", "not-a-uuid")


def test_backfill_queries_are_bounded_per_batch(
    videos_root, legacy_root, django_assert_max_num_queries
):
    pairs = [
        (TranscodePipeline.AWS, StorageLocation.AWS),
        (TranscodePipeline.AWS, StorageLocation.SCALEWAY),
        (TranscodePipeline.PEERTUBE, None),
    ]
    videos = Video.objects.bulk_create(
        Video(
            title=f"v{i}",
            upload_state=UploadState.READY,
            uploaded_on=Video.stamp_to_datetime(STAMP),
            transcode_pipeline=pairs[i % 3][0],
            storage_location=pairs[i % 3][1],
            resolutions=[240, 480],
            urls={"thumbnails": {}},  # known: no thumbnail, no storage lookup
        )
        for i in range(1000)
    )
    SubtitleTrack.objects.bulk_create(
        SubtitleTrack(
            video=video,
            stamp=STAMP,
            job_uuid=uuid.uuid4(),
            state="ready",
            language="en",
            key=f"vod/{video.id}/video/{STAMP}/en.vtt",
        )  # fmt: skip
        for video in videos[2::3][:100]
    )
    # One SELECT per batch of 1000, one for its subtitle tracks, one UPDATE (one statement per
    # batch; elsewhere than PostgreSQL a locked re-read too): not one per video.
    with django_assert_max_num_queries(8):
        summary = backfill.videos_backfill_urls(videos=Video.objects.all(), batch_size=1000)
    assert summary == {"videos": 1000, "changed": 1000, "raced": 0, "dry_run": False}
    subtitled = Video.objects.get(pk=videos[2].pk)
    assert subtitled.urls["subtitles"] == {
        "en": f"/videos/vod/{subtitled.id}/video/{STAMP}/en.vtt"
    }
    with django_assert_max_num_queries(3):
        again = backfill.videos_backfill_urls(videos=Video.objects.all(), batch_size=1000)
    assert again["changed"] == 0


@pytest.mark.s3
def test_persisted_urls_outlive_the_presign_lifetime(s3_videos, settings):
    """With the default public-read vod/, a ready video's URLs work after any lifetime."""
    settings.STORAGES["videos"]["OPTIONS"]["querystring_expire"] = 1
    reset_video_storage()
    public_read(s3_videos["client"], s3_videos["bucket_name"], "vod/")
    video = ready_video(pipeline=TranscodePipeline.PEERTUBE, location=StorageLocation.SCALEWAY)
    storage = storages["videos"]
    keys = [video.master_playlist_key(STAMP), video.thumbnail_key(STAMP)] + [
        video.rendition_video_key(STAMP, r) for r in (240, 480)
    ]
    for key in keys:
        storage.save(key, ContentFile(key.encode()))
    media_urls.video_refresh_urls(video=video)
    signed_for_internal_reads = storage.url(video.thumbnail_key(STAMP))

    time.sleep(2.5)  # past querystring_expire

    assert requests.get(signed_for_internal_reads, timeout=10).status_code == 403  # expired
    video.refresh_from_db()
    urls = [video.urls["manifests"]["hls"], *video.urls["mp4"].values()]
    urls += video.urls["thumbnails"].values()
    for url in urls:
        assert "X-Amz-" not in url
        response = requests.get(url, timeout=10)
        assert response.status_code == 200, (url, response.status_code)


@pytest.mark.s3
def test_private_bucket_is_signed_at_read(s3_videos, settings, client, django_user_model):
    """VIDEOS_SIGN_URLS_AT_READ: the API signs from the keys; the stored value stays plain."""
    settings.VIDEOS_SIGN_URLS_AT_READ = True
    settings.VIDEOS_SIGNED_URL_EXPIRE = 600
    video = ready_video(pipeline=TranscodePipeline.PEERTUBE, location=StorageLocation.SCALEWAY)
    key = video.rendition_video_key(STAMP, 240)
    storages["videos"].save(key, ContentFile(b"mp4 bytes"))
    media_urls.video_refresh_urls(video=video)
    video.refresh_from_db()
    assert requests.get(video.urls["mp4"]["240"], timeout=10).status_code == 403  # private

    user = django_user_model.objects.create_superuser("staff", "s@example.org", "pw")
    client.force_login(user)
    body = client.get(f"/api/videos/{video.id}/").json()

    served = body["urls"]["mp4"]["240"]
    assert "X-Amz-Signature" in served and "X-Amz-Expires=600" in served
    assert requests.get(served, timeout=10).content == b"mp4 bytes"
    video.refresh_from_db()
    assert "X-Amz-" not in video.urls["mp4"]["240"]


def test_refresh_urls_refuses_a_video_without_active_version():
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="Only a transcoded version has URLs to refresh"):
        media_urls.video_refresh_urls(video=Video.objects.create(title=str(uuid.uuid4())))


MASTER = """#EXTM3U
#EXT-X-VERSION:6
#EXT-X-STREAM-INF:BANDWIDTH=300000,RESOLUTION=426x240
{stamp}-240.m3u8
"""
RENDITION = """#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:4
#EXT-X-MAP:URI="{stamp}-240-fragmented.mp4",BYTERANGE="4@0"
#EXTINF:4.0,
#EXT-X-BYTERANGE:5@4
{stamp}-240-fragmented.mp4
#EXTINF:4.0,
../../../{other}/video/{stamp}/{stamp}-240-fragmented.mp4
#EXT-X-ENDLIST
"""


def private_hls_video(storage, other_id) -> Video:
    video = ready_video(
        pipeline=TranscodePipeline.PEERTUBE, location=StorageLocation.SCALEWAY, resolutions=[240]
    )
    folder = video.output_prefix(STAMP)
    storage.save(video.master_playlist_key(STAMP), ContentFile(MASTER.format(stamp=STAMP)))
    storage.save(
        video.rendition_playlist_key(STAMP, 240),
        ContentFile(RENDITION.format(stamp=STAMP, other=other_id)),
    )
    storage.save(video.rendition_video_key(STAMP, 240), ContentFile(b"initmedia"))
    assert video.rendition_playlist_key(STAMP, 240).startswith(folder)
    media_urls.video_refresh_urls(video=video)
    return video


@pytest.fixture
def private_hls(s3_videos, settings, client, django_user_model):
    """(video, another video, the HLS URL the API answers) on a private bucket."""
    settings.VIDEOS_SIGN_URLS_AT_READ = True
    settings.VIDEOS_SIGNED_URL_EXPIRE = 600
    storage = storages["videos"]
    other = private_hls_video(storage, uuid.uuid4())
    video = private_hls_video(storage, other.id)
    client.force_login(django_user_model.objects.create_superuser("staff", "s@x.org", "pw"))
    hls = client.get(f"/api/videos/{video.id}/").json()["urls"]["manifests"]["hls"]
    return video, other, hls


@pytest.mark.s3
def test_private_bucket_hls_playlists_are_served_with_signed_entries(private_hls, client):
    """Each rendition playlist → our view with a fresh token; each media entry → presigned;
    an entry leaving the video's HLS folder is left as written (never signed)."""
    video, other, hls = private_hls
    assert hls.startswith(f"/api/videos/{video.id}/hls/") and hls.split("?")[0].endswith(
        "/master.m3u8"
    )
    client.logout()  # the token is the permission: players send no JWT
    master = client.get(hls)
    assert master.status_code == 200
    assert master["Content-Type"] == "application/vnd.apple.mpegurl"
    assert master["Cache-Control"] == "no-store"
    rendition_url = master.content.decode().splitlines()[-1]
    assert rendition_url.startswith(f"/api/videos/{video.id}/hls/")
    assert rendition_url.endswith(f"/{STAMP}-240.m3u8")

    lines = client.get(rendition_url).content.decode().splitlines()
    init = lines[3].split('URI="')[1].split('"')[0]
    assert "X-Amz-Signature" in init and "X-Amz-Expires=600" in init
    assert lines[3].endswith('BYTERANGE="4@0"')
    assert requests.get(init, headers={"Range": "bytes=0-3"}, timeout=10).content == b"init"
    assert requests.get(lines[6], headers={"Range": "bytes=4-8"}, timeout=10).content == b"media"
    assert lines[8] == f"../../../{other.id}/video/{STAMP}/{STAMP}-240-fragmented.mp4"


@pytest.mark.s3
def test_private_bucket_hls_refuses_traversal_and_other_videos(private_hls, client, settings):
    video, other, hls = private_hls
    base = hls.rsplit("/", 1)[0]
    token = base.rsplit("/", 1)[1]
    other_master = f"{STAMP}/../../../{other.id}/video/{STAMP}/master.m3u8"
    assert client.get(hls).status_code == 200

    refused = [
        f"{base}/../../../{other.id}/video/{STAMP}/master.m3u8",  # traversal, raw
        f"{base}/%2E%2E/%2E%2E/%2E%2E/{other.id}/video/{STAMP}/master.m3u8",  # encoded
        f"{base}/{other_master}",
        f"/api/videos/{other.id}/hls/{token}/master.m3u8",  # this video's token, another video
        f"{base}/{STAMP}-240-fragmented.mp4",  # media is never proxied
        f"{base}/missing.m3u8",
        f"/api/videos/{video.id}/hls/0:forged/master.m3u8",
    ]
    for url in refused:
        assert client.get(url).status_code == 404, url

    settings.VIDEOS_SIGN_URLS_AT_READ = False  # public-read mode: playlists come from the bucket
    assert client.get(hls).status_code == 404
    settings.VIDEOS_SIGN_URLS_AT_READ = True
    settings.VIDEOS_SIGNED_URL_EXPIRE = 1
    time.sleep(2.1)
    assert client.get(hls).status_code == 404  # the token expired
