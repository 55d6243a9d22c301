"""The transcoding-ended callback acts once, builds URLs with the storage, never raises."""

import logging

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from storages.backends.s3 import S3Storage

from marsha_runner.runners.outcome import TranscodingOutcome
from marsha_runner.videos import completion, media_urls
from marsha_runner.videos.constants import StorageLocation, TranscodePipeline, UploadState
from marsha_runner.videos.models import Video
from marsha_runner.websocket.notify import video_group_name
from tests.factories import VideoFactory

pytestmark = pytest.mark.django_db

STAMP = 1767261600
LADDER = [720, 240, 480, 360]


def store_outputs(video, stamp=STAMP, resolutions=LADDER, thumbnail=True):
    storage = storages["videos"]
    storage.save(video.master_playlist_key(stamp), ContentFile(b"#EXTM3U\n"))
    for res in resolutions:
        storage.save(video.rendition_playlist_key(stamp, res), ContentFile(b"#EXTM3U\n"))
        storage.save(video.rendition_video_key(stamp, res), ContentFile(b"mp4"))
    if thumbnail:
        storage.save(video.thumbnail_key(stamp), ContentFile(b"jpg"))


def outcome_for(video, stamp=STAMP, resolutions=LADDER, succeeded=True, error=None):
    dest = video.output_prefix(stamp)
    return TranscodingOutcome(
        destination=dest,
        base_name=str(stamp),
        succeeded=succeeded,
        error=error,
        resolutions=sorted(resolutions),
        master_playlist_key=f"{dest}/master.m3u8" if succeeded else None,
        video_keys={r: video.rendition_video_key(stamp, r) for r in resolutions},
        playlist_keys={r: video.rendition_playlist_key(stamp, r) for r in resolutions},
        thumbnail_key=video.thumbnail_key(stamp) if succeeded else None,
    )


def processing_video(stamp=STAMP, **kwargs):
    return VideoFactory(
        upload_state=UploadState.PROCESSING, processing_stamp=stamp, launched_stamp=stamp, **kwargs
    )


def test_success_makes_the_video_ready_with_storage_urls(django_capture_on_commit_callbacks):
    video = processing_video()
    store_outputs(video)
    with django_capture_on_commit_callbacks(execute=True):
        completion.video_transcoding_ended(outcome=outcome_for(video))

    video.refresh_from_db()
    assert video.upload_state == UploadState.READY
    assert video.upload_error_reason == ""
    assert video.active_stamp == STAMP
    assert video.uploaded_on == Video.stamp_to_datetime(STAMP)
    assert video.resolutions == [240, 360, 480, 720]
    assert video.transcode_pipeline == TranscodePipeline.PEERTUBE
    assert video.storage_location is None  # memory storage: not a bucket
    storage = storages["videos"]
    buster = "809ba684b0c4"  # sha256("240,360,480,720")[:12]
    ladder = video.resolutions
    assert video.urls == {
        "manifests": {"hls": f"{storage.url(video.master_playlist_key(STAMP))}?v={buster}"},
        "mp4": {str(r): storage.url(video.rendition_video_key(STAMP, r)) for r in ladder},
        "thumbnails": {str(r): storage.url(video.thumbnail_key(STAMP)) for r in ladder},
    }


def test_later_calls_change_nothing(django_capture_on_commit_callbacks, caplog):
    video = processing_video()
    store_outputs(video)
    caplog.set_level(logging.INFO, logger="marsha_runner.videos")
    with django_capture_on_commit_callbacks(execute=True):
        completion.video_transcoding_ended(outcome=outcome_for(video))
    video.refresh_from_db()
    first = (video.updated_on, video.urls, video.resolutions)

    # The runners app may call again, with a success or even a failure: nothing moves.
    for outcome in (
        outcome_for(video),
        outcome_for(video, resolutions=[240]),
        outcome_for(video, succeeded=False, error="late failure"),
    ):
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            completion.video_transcoding_ended(outcome=outcome)
        assert callbacks == []  # no release, no notification
    video.refresh_from_db()
    assert (video.updated_on, video.urls, video.resolutions) == first
    assert video.upload_state == UploadState.READY
    ready_logs = [r for r in caplog.records if ": ready " in r.getMessage()]
    assert len(ready_logs) == 1


def test_an_other_stamp_is_ignored():
    video = processing_video(stamp=STAMP + 10)
    store_outputs(video)
    completion.video_transcoding_ended(outcome=outcome_for(video, stamp=STAMP))
    video.refresh_from_db()
    assert video.upload_state == UploadState.PROCESSING
    assert video.uploaded_on is None


def test_a_ready_video_keeps_its_version_until_the_new_one_completes():
    video = processing_video(stamp=STAMP + 60)
    video.upload_state = UploadState.READY
    video.save()
    completion.video_transcoding_ended(outcome=outcome_for(video, stamp=STAMP + 60))
    video.refresh_from_db()
    assert video.upload_state == UploadState.READY
    assert video.uploaded_on is None  # not touched: the video was not processing


def test_failure_sets_error_with_the_reason_and_keeps_the_source(
    django_capture_on_commit_callbacks,
):
    video = processing_video()
    source = video.source_key(STAMP)
    storages["videos"].save(source, ContentFile(b"source"))
    with django_capture_on_commit_callbacks(execute=True):
        completion.video_transcoding_ended(
            outcome=outcome_for(video, succeeded=False, error="Transcoding errored: boom")
        )
    video.refresh_from_db()
    assert video.upload_state == UploadState.ERROR
    assert video.upload_error_code == "transcoding_failed"
    assert video.upload_error_reason == (
        "The transcoding failed: upload the video again; if it fails again, contact support."
    )
    assert video.upload_error_detail == "Transcoding errored: boom"
    assert video.urls is None
    # Kept until cleanup_sources' retention: a requeue or a Re-trigger starts from it.
    assert storages["videos"].exists(source)


def test_success_with_a_rendition_missing_from_storage_is_an_error():
    video = processing_video()
    store_outputs(video, resolutions=[240, 360, 480])  # 720 never stored
    completion.video_transcoding_ended(outcome=outcome_for(video))
    video.refresh_from_db()
    assert video.upload_state == UploadState.ERROR
    assert video.upload_error_code == "renditions_missing"
    assert f"{STAMP}-720" in video.upload_error_detail
    assert video.resolutions == []


def test_success_without_any_rendition_is_an_error():
    video = processing_video()
    completion.video_transcoding_ended(outcome=outcome_for(video, resolutions=[]))
    video.refresh_from_db()
    assert video.upload_state == UploadState.ERROR


@pytest.mark.parametrize(
    "destination, base_name",
    [("garbage", "1"), ("vod/not-a-uuid/video/1", "1"), ("", ""), (None, None)],
)
def test_never_raises_on_a_strange_outcome(destination, base_name):
    video = processing_video()
    outcome = TranscodingOutcome(
        destination=destination,
        base_name=base_name,
        succeeded=True,
        error=None,
        resolutions=[240],
        master_playlist_key=None,
        video_keys={},
        playlist_keys={},
        thumbnail_key=None,
    )
    completion.video_transcoding_ended(outcome=outcome)  # must not raise
    video.refresh_from_db()
    assert video.upload_state == UploadState.PROCESSING


def test_unknown_video_is_ignored(django_capture_on_commit_callbacks, caplog):
    """The outcome of a deleted video: one INFO line saying it is ignored, and nothing else:
    no row written back, no source released, nobody notified, no failure swallowed by the
    callback's catch-all (it logs an ERROR: the call itself never raises)."""
    video = processing_video()
    store_outputs(video)
    video_id, source = video.id, video.source_key(STAMP)
    storages["videos"].save(source, ContentFile(b"source"))
    outcome = outcome_for(video)
    video.delete()
    caplog.set_level(logging.INFO)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        completion.video_transcoding_ended(outcome=outcome)
    assert callbacks == []  # no source release, no websocket notification
    assert not Video.objects.filter(id=video_id).exists()
    assert storages["videos"].exists(source)
    logged = [
        (r.levelname, r.getMessage()) for r in caplog.records if r.name.startswith("marsha_runner")
    ]
    assert logged == [
        ("INFO", f"Transcoding of video {video_id} stamp {STAMP} ended again: ignored.")
    ]


def test_the_state_change_is_pushed_to_the_video_group(django_capture_on_commit_callbacks):
    video = processing_video()
    store_outputs(video)
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(video_group_name(video.id), channel)
    with django_capture_on_commit_callbacks(execute=True):
        completion.video_transcoding_ended(outcome=outcome_for(video))
    message = async_to_sync(layer.receive)(channel)
    assert message["state"] == UploadState.READY
    assert message["video"] == str(video.id)


def test_cache_buster_changes_with_the_rendition_list():
    # sha256 of the sorted list written "240,720", first 12 hex digits: any order, same value.
    assert media_urls.hls_cache_buster([240, 720]) == "d9e3efa0f10d"
    assert media_urls.hls_cache_buster([720, 240]) == "d9e3efa0f10d"
    assert media_urls.hls_cache_buster([240, 480, 720]) == "ceb2a1f94927"


def test_a_presigned_url_is_left_unsigned_by_the_buster():
    signed = "https://s3.example/b/k?X-Amz-Algorithm=AWS4&X-Amz-Signature=abc"
    assert media_urls.url_with_cache_buster(signed, [240]) == signed
    assert (
        media_urls.url_with_cache_buster("/v/master.m3u8", [240])
        == "/v/master.m3u8?v=6af1f692e949"
    )
    assert (
        media_urls.url_with_cache_buster("https://cdn.example/v/master.m3u8?a=1", [240])
        == "https://cdn.example/v/master.m3u8?a=1&v=6af1f692e949"
    )


def test_storage_location_is_scaleway_for_s3_only():
    s3 = S3Storage(bucket_name="bucket", access_key="a", secret_key="b")  # no network used
    assert completion.storage_location_of(s3) == StorageLocation.SCALEWAY
    assert completion.storage_location_of(storages["videos"]) is None


def test_refresh_urls_rebuilds_from_the_active_version():
    video = VideoFactory(
        upload_state=UploadState.READY,
        uploaded_on=Video.stamp_to_datetime(STAMP),
        transcode_pipeline=TranscodePipeline.PEERTUBE,
        resolutions=[240, 480],
        urls={"stale": True},
    )
    store_outputs(video, resolutions=[240, 480], thumbnail=False)
    media_urls.video_refresh_urls(video=video)
    video.refresh_from_db()
    assert set(video.urls) == {"manifests", "mp4", "thumbnails"}
    assert set(video.urls["mp4"]) == {"240", "480"}
    assert video.urls["thumbnails"] == {}  # no thumbnail stored: no dead link persisted


# --- video_transcoding_complete: the entry point of whoever finds a missed completion ---------


def test_complete_applies_a_finished_job_tree_once():
    from tests.runners.factories import job_tree, job_tree_finish

    video = processing_video()
    store_outputs(video, resolutions=[720, 360])
    tree, parent, children = job_tree(directory=video.output_prefix(STAMP))
    assert completion.video_transcoding_complete(video=video) is False  # jobs still active
    job_tree_finish(video=tree, jobs=[parent, *children])

    assert completion.video_transcoding_complete(video=video) is True
    video.refresh_from_db()
    assert video.upload_state == UploadState.READY
    assert video.resolutions == [360, 720]
    assert completion.video_transcoding_complete(video=video) is False  # already applied


def test_complete_applies_a_failed_job_tree():
    from django_peertube_runner_connector.models import RunnerJobState

    from tests.runners.factories import job_tree, job_tree_finish

    video = processing_video()
    tree, parent, children = job_tree(directory=video.output_prefix(STAMP))
    job_tree_finish(video=tree, jobs=[parent], state=RunnerJobState.ERRORED)
    job_tree_finish(video=tree, jobs=children, state=RunnerJobState.PARENT_ERRORED)

    assert completion.video_transcoding_complete(video=video) is True
    video.refresh_from_db()
    assert video.upload_state == UploadState.ERROR
    assert video.upload_error_detail.startswith("Transcoding errored")


def test_complete_without_a_job_tree_changes_nothing():
    video = processing_video()
    assert completion.video_transcoding_complete(video=video) is False
    video.refresh_from_db()
    assert video.upload_state == UploadState.PROCESSING
