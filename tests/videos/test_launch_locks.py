"""No lock across I/O: while a launch probes the source, the video row stays free (PostgreSQL)."""

import threading
import time

import pytest
from django.db import DatabaseError, connections, transaction

from marsha_runner.runners import transcoding as runner_transcoding
from marsha_runner.runners.selectors import runner_jobs_of_video, transcoded_video_uuids_under
from marsha_runner.runners.transcoding import transcoding_outcome_get
from marsha_runner.videos import launch as video_launch
from marsha_runner.videos import upload
from marsha_runner.videos.constants import UploadState
from marsha_runner.videos.models import Video
from tests.factories import VideoFactory
from tests.runners.media import store_clip

pytestmark = [pytest.mark.postgres, pytest.mark.ffmpeg, pytest.mark.django_db(transaction=True)]

STAMP = 1767261600


def test_a_second_request_is_not_blocked_while_a_launch_probes(videos_root, monkeypatch):
    video = VideoFactory(upload_state=UploadState.PROCESSING, processing_stamp=STAMP)
    source_key = store_clip(videos_root, video.source_key(STAMP), width=426, height=240)
    probing, release = threading.Event(), threading.Event()
    real_ffprobe = runner_transcoding.ffprobe

    def slow_ffprobe(url, **kwargs):  # a slow source (S3 far away), on the real file
        probing.set()
        assert release.wait(60), "the test never released the probe"
        return real_ffprobe(url, **kwargs)

    monkeypatch.setattr(runner_transcoding, "ffprobe", slow_ffprobe)
    errors = []

    def launch():
        try:
            video_launch.video_launch_transcoding(video_id=video.id, stamp=STAMP)
        except Exception as err:  # noqa: BLE001 - reported to the test below
            errors.append(err)
        finally:
            connections.close_all()

    launcher = threading.Thread(target=launch)
    launcher.start()
    try:
        assert probing.wait(30), "the launch never probed"
        # A second request on the same video, on this thread's own connection: it must get
        # the row lock at once (NOWAIT raises if the launch held it through the probe).
        started = time.perf_counter()
        with transaction.atomic():
            locked = Video.objects.select_for_update(nowait=True).get(id=video.id)
            assert locked.upload_state == UploadState.PROCESSING
        again = upload.video_upload_ended(video_id=video.id, file_key=source_key)
        assert again.upload_state == UploadState.PROCESSING  # idempotent, answered at once
        assert time.perf_counter() - started < 5
    except DatabaseError as err:
        pytest.fail(f"The video row was locked while the launch probed: {err}")
    finally:
        release.set()
        launcher.join(120)
    assert not launcher.is_alive() and not errors, errors

    video.refresh_from_db()
    assert (video.upload_state, video.launched_stamp) == (UploadState.PROCESSING, STAMP)
    (tree,) = transcoded_video_uuids_under(prefix=video.output_prefix(STAMP))
    assert runner_jobs_of_video(video_uuid=tree).exists()
    assert transcoding_outcome_get(destination=video.output_prefix(STAMP)) is None  # jobs wait
    assert (videos_root / video.thumbnail_key(STAMP)).exists()


def test_a_launch_that_lost_the_race_discards_what_it_prepared(videos_root, monkeypatch):
    """The state read before the probe is re-checked under the lock: a video re-uploaded
    meanwhile gets no job tree for the old stamp, and the old thumbnail is removed."""
    video = VideoFactory(upload_state=UploadState.PROCESSING, processing_stamp=STAMP)
    store_clip(videos_root, video.source_key(STAMP), width=426, height=240)
    real_prepare = runner_transcoding.transcoding_prepare

    def prepare_then_reupload(**kwargs):
        prepared = real_prepare(**kwargs)
        Video.objects.filter(id=video.id).update(processing_stamp=STAMP + 60)  # a new upload
        return prepared

    monkeypatch.setattr(video_launch, "transcoding_prepare", prepare_then_reupload)
    video_launch.video_launch_transcoding(video_id=video.id, stamp=STAMP)

    video.refresh_from_db()
    assert video.launched_stamp is None
    assert transcoded_video_uuids_under(prefix=video.output_prefix(STAMP)) == []
    assert not (videos_root / video.thumbnail_key(STAMP)).exists()
