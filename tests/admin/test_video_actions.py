"""Video actions: each a shell over a videos service (filesystem video storage)."""

import pytest
from django.contrib.admin.models import LogEntry
from django.core.files.base import ContentFile
from django.core.files.storage import storages

from marsha_runner.videos.constants import TranscodePipeline, UploadState
from marsha_runner.videos.launch import video_launch_source
from marsha_runner.videos.models import Video
from tests.factories import VideoFactory

from .helpers import action_names, messages_of, post_action, staff_user

pytestmark = pytest.mark.django_db

STAMP = 1_700_000_000


@pytest.fixture
def videos(videos_root):
    storage = storages["videos"]
    errored = VideoFactory(
        title="errored", upload_state=UploadState.ERROR, upload_error_reason="boom",
        processing_stamp=STAMP, launched_stamp=STAMP,
    )  # fmt: skip
    storage.save(errored.source_key(STAMP), ContentFile(b"kept upload"))
    ready = VideoFactory(
        title="ready", upload_state=UploadState.READY, processing_stamp=STAMP,
        launched_stamp=STAMP, uploaded_on=Video.stamp_to_datetime(STAMP),
        transcode_pipeline=TranscodePipeline.PEERTUBE, resolutions=[240, 480],
        urls={"manifests": {"hls": "http://x/master.m3u8"}},
    )  # fmt: skip
    storage.save(ready.rendition_video_key(STAMP, 480), ContentFile(b"480p rendition"))
    pending = VideoFactory(title="pending")
    legacy = VideoFactory(
        title="legacy", upload_state=UploadState.READY, transcode_pipeline=TranscodePipeline.AWS
    )
    lost = VideoFactory(title="lost", upload_state=UploadState.ERROR, processing_stamp=STAMP)
    untouched = VideoFactory(title="untouched", upload_state=UploadState.ERROR,
                             processing_stamp=STAMP)  # fmt: skip
    storage.save(untouched.source_key(STAMP), ContentFile(b"other upload"))
    return errored, ready, pending, legacy, lost, untouched


def row(video):
    return Video.objects.filter(pk=video.pk).values().get()


def test_retranscode_refused_without_its_permission(client, videos):
    errored, *_ = videos
    client.force_login(staff_user())
    assert "retranscode" not in action_names(client, Video)
    before = row(errored)
    response = post_action(client, Video, "retranscode", [errored], confirmed=True)
    assert response.status_code in (200, 302)  # the list again: no such action for this user
    assert row(errored) == before
    assert not LogEntry.objects.exists()


def test_retranscode_confirmation_then_effect(client, videos, django_capture_on_commit_callbacks):
    errored, ready, pending, legacy, lost, untouched = videos
    selection = [errored, ready, pending, legacy, lost]
    client.force_login(staff_user("retranscode_video"))

    page = post_action(client, Video, "retranscode", selection)
    html = page.content.decode()
    assert page.templates[0].name == "admin_kit/confirm_action.html"
    assert "will be transcoded again from its kept upload" in html
    assert "will be transcoded again from its 480p rendition" in html
    assert "skipped: it is pending: only a ready or errored video" in html
    assert "skipped: it is a legacy AWS video: switch it to the PEERTUBE pipeline" in html
    assert "skipped: no source left" in html
    assert row(errored)["upload_state"] == UploadState.ERROR  # nothing changed yet

    skipped_before = {v.pk: row(v) for v in (pending, legacy, lost, untouched)}
    with django_capture_on_commit_callbacks() as callbacks:
        response = post_action(client, Video, "retranscode", selection, confirmed=True)
    storage = storages["videos"]
    for video, source in (
        (errored, errored.source_key(STAMP)),
        (ready, ready.rendition_video_key(STAMP, 480)),
    ):
        video.refresh_from_db()
        assert video.upload_state == UploadState.PROCESSING
        assert video.processing_stamp > STAMP
        # The launch reads the existing object where it is: nothing was copied.
        assert video.transcode_source == source
        assert not storage.exists(video.source_key(video.processing_stamp))
    # A ready video keeps serving its version until the new one is complete.
    assert ready.urls == {"manifests": {"hls": "http://x/master.m3u8"}}
    assert ready.uploaded_on == Video.stamp_to_datetime(STAMP)
    assert errored.upload_error_reason == ""
    assert {pk: row(Video(pk=pk)) for pk in skipped_before} == skipped_before  # untouched
    assert len(callbacks) >= 2  # the launches, enqueued after commit

    messages = messages_of(response)
    assert "errored (processing): transcoding again from its kept upload (enqueued)." in messages
    assert any("skipped: no source left" in m for m in messages)
    assert any("2 done, 3 skipped" in m for m in messages)
    assert set(LogEntry.objects.values_list("object_id", flat=True)) == {
        str(errored.pk),
        str(ready.pk),
    }


def test_only_the_title_is_editable(admin_client, videos):
    errored, *_ = videos
    from .helpers import change

    response = admin_client.post(
        change(Video, errored.pk),
        {"title": "renamed", "upload_state": "ready", "urls": '{"x": 1}'},
    )
    assert response.status_code == 302
    errored.refresh_from_db()
    assert errored.title == "renamed"
    assert errored.upload_state == UploadState.ERROR and errored.urls is None


@pytest.fixture
def legacy_videos(videos_root, legacy_root):
    from marsha_runner.storage import legacy_storage

    legacy = VideoFactory(
        title="legacy", upload_state=UploadState.READY, transcode_pipeline=TranscodePipeline.AWS,
        storage_location="AWS", uploaded_on=Video.stamp_to_datetime(STAMP),
        resolutions=[480, 1080], urls={"manifests": {"hls": "http://aws/legacy.m3u8"}},
    )  # fmt: skip
    legacy_storage().save(legacy.legacy_mp4_key(STAMP, 1080), ContentFile(b"legacy 1080p"))
    missing = VideoFactory(
        title="missing mp4", upload_state=UploadState.READY,
        transcode_pipeline=TranscodePipeline.AWS, storage_location="AWS",
        uploaded_on=Video.stamp_to_datetime(STAMP), resolutions=[480],
    )  # fmt: skip
    peertube = VideoFactory(
        title="peertube", upload_state=UploadState.READY,
        transcode_pipeline=TranscodePipeline.PEERTUBE,
    )  # fmt: skip
    return legacy, missing, peertube


def test_switch_to_peertube(client, legacy_videos, django_capture_on_commit_callbacks):
    legacy, missing, peertube = legacy_videos
    client.force_login(staff_user("retranscode_video"))
    assert "switch_to_peertube" not in action_names(client, Video)
    client.force_login(staff_user("switch_pipeline_video", username="switcher"))
    selection = [legacy, missing, peertube]

    html = post_action(client, Video, "switch_to_peertube", selection).content.decode()
    assert "will be transcoded again from its legacy 1080p mp4" in html
    assert "skipped: its highest legacy mp4 rendition is not in storage" in html
    assert "skipped: its pipeline is PEERTUBE, not AWS" in html

    skipped_before = {v.pk: row(v) for v in (missing, peertube)}
    with django_capture_on_commit_callbacks() as launches:
        response = post_action(client, Video, "switch_to_peertube", selection, confirmed=True)
    legacy.refresh_from_db()
    assert legacy.upload_state == UploadState.PROCESSING
    # Still AWS and serving its legacy version until the new one is ready.
    assert legacy.transcode_pipeline == TranscodePipeline.AWS
    assert legacy.urls == {"manifests": {"hls": "http://aws/legacy.m3u8"}}
    # Nothing copied in the request: the launch task copies the mp4, out of any lock.
    key = legacy.source_key(legacy.processing_stamp)
    assert not storages["videos"].exists(key)
    assert video_launch_source(video=legacy, stamp=legacy.processing_stamp) == key
    with storages["videos"].open(key) as handle:
        assert handle.read() == b"legacy 1080p"
    assert launches  # the launch, enqueued after commit
    assert {pk: row(Video(pk=pk)) for pk in skipped_before} == skipped_before
    assert any("1 done, 2 skipped" in m for m in messages_of(response))
    assert list(LogEntry.objects.values_list("object_id", flat=True)) == [str(legacy.pk)]


def test_transcribe(client, videos_root):
    from django_peertube_runner_connector.models import RunnerJobType

    from marsha_runner.runners.models import RunnerJob
    from marsha_runner.videos.models import SubtitleTrack
    from tests.runners.factories import job_tree

    ready = VideoFactory(
        title="ready", upload_state=UploadState.READY,
        transcode_pipeline=TranscodePipeline.PEERTUBE,
        uploaded_on=Video.stamp_to_datetime(STAMP), resolutions=[720],
    )  # fmt: skip
    job_tree(directory=ready.output_prefix(STAMP), resolutions=(720,))
    pending = VideoFactory(title="pending")
    client.force_login(staff_user("retranscode_video"))
    assert "transcribe" not in action_names(client, Video)
    client.force_login(staff_user("transcribe_video", username="transcriber"))
    transcriptions = RunnerJob.objects.filter(type=RunnerJobType.VIDEO_TRANSCRIPTION)

    html = post_action(client, Video, "transcribe", [ready, pending]).content.decode()
    assert "will be transcribed (a transcription job for the runners)" in html
    assert "skipped: The video is pending, not ready." in html
    assert not transcriptions.exists() and not SubtitleTrack.objects.exists()  # rolled back

    response = post_action(client, Video, "transcribe", [ready, pending], confirmed=True)
    job = transcriptions.get()
    assert SubtitleTrack.objects.get().video_id == ready.pk
    assert f"ready (ready): transcription job {job.uuid} started." in messages_of(response)
    assert any("skipped: The video is pending" in m for m in messages_of(response))
    assert list(LogEntry.objects.values_list("object_id", flat=True)) == [str(ready.pk)]


def test_migrate_to_scaleway(client, legacy_videos, django_capture_on_commit_callbacks):
    """The Celery task runs eagerly (env.d/test): the selected legacy video is copied under
    aws/ in the video storage and switched; the others are skipped with the reason."""
    from marsha_runner.migration.models import MigrationObject

    legacy, _missing, peertube = legacy_videos
    client.force_login(staff_user("switch_pipeline_video"))
    assert "migrate_to_scaleway" not in action_names(client, Video)
    client.force_login(staff_user("migrate_video", username="migrator"))

    html = post_action(client, Video, "migrate_to_scaleway", [legacy, peertube]).content.decode()
    assert "its migration to Scaleway will be enqueued" in html
    assert "skipped: it is not a legacy video in AWS (pipeline PEERTUBE" in html
    assert not MigrationObject.objects.exists()

    with django_capture_on_commit_callbacks(execute=True):
        response = post_action(
            client, Video, "migrate_to_scaleway", [legacy, peertube], confirmed=True
        )
    legacy.refresh_from_db()
    assert legacy.storage_location == "SCALEWAY"
    key = Video.migrated_key(legacy.legacy_mp4_key(STAMP, 1080))
    with storages["videos"].open(key) as handle:
        assert handle.read() == b"legacy 1080p"
    assert any("migration to Scaleway enqueued" in m for m in messages_of(response))
    assert any("1 done, 1 skipped" in m for m in messages_of(response))
    assert list(LogEntry.objects.values_list("object_id", flat=True)) == [str(legacy.pk)]
