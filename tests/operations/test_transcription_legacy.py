"""Legacy AWS videos are transcribed from their highest mp4, before and after migration.

Two seeded legacy videos whose highest mp4 speaks (espeak-ng): one transcribed while its files
are in the AWS legacy bucket (a folder here), then migrated; the other migrated first
(``aws/`` in the video storage), then transcribed. The dev runner's whisper does the work; the
transcript is stored in the video storage, so it survives the migration.
"""

from io import StringIO

import pytest
import requests
from django.core.management import call_command

from marsha_runner.devrunner.client import TRANSCRIPTION_JOB
from marsha_runner.operations.transcription import video_transcribe
from marsha_runner.storage import legacy_storage, video_storage
from marsha_runner.videos.constants import StorageLocation, SubtitleState
from marsha_runner.videos.legacy_seed import legacy_video_seed
from marsha_runner.videos.models import SubtitleTrack
from tests.operations.test_transcription import client, runner_token  # noqa: F401
from tests.speech import assert_transcript, make_spoken_clip, media_seconds

pytestmark = [pytest.mark.e2e, pytest.mark.ffmpeg, pytest.mark.speech]


def spoken_legacy_video(title, tmp_path):
    """A seeded legacy video (240p and 360p) whose 360p mp4 is speech; (video, seconds)."""
    video, _created = legacy_video_seed(title=title, resolutions=(240, 360), seconds=2)
    clip = make_spoken_clip(tmp_path / f"{video.id}.mp4", width=640, height=360)
    key = video.legacy_mp4_key(video.active_stamp, 360)
    storage = legacy_storage()
    storage.delete(key)
    with open(clip, "rb") as handle:
        storage.save(key, handle)
    return video, media_seconds(clip)


def transcribe_and_check(video, spoken, base, token, tmp_path):
    track = video_transcribe(video=video)
    runner = client(base, token, tmp_path, f"w-{video.id}", job_types=[TRANSCRIPTION_JOB])
    assert runner.run_until_idle(timeout=180, idle=1) == 1
    track.refresh_from_db()
    assert (track.state, track.language, track.error_reason) == (SubtitleState.READY, "en", "")
    video.refresh_from_db()
    url = video.urls["subtitles"]["en"]
    assert url.startswith("/videos/vod/"), url  # the video storage, whatever the pipeline
    assert_transcript(requests.get(f"{base}{url}", timeout=30).text, spoken_seconds=spoken)
    return url


def test_legacy_videos_are_transcribed_from_their_highest_mp4_before_and_after_migration(
    videos_root,
    legacy_root,
    live_server_url,
    runner_token,  # noqa: F811
    tmp_path,
    settings,
):
    settings.DEBUG = True
    before, before_spoken = spoken_legacy_video("Transcribed in AWS", tmp_path)
    after, after_spoken = spoken_legacy_video("Transcribed once migrated", tmp_path)
    assert before.storage_location == StorageLocation.AWS

    # The confirmation page's dry run copies nothing and saves nothing.
    assert video_transcribe(video=before, dry_run=True).pk is None
    assert not video_storage().exists(before.source_key(before.active_stamp))
    assert not SubtitleTrack.objects.exists()
    url = transcribe_and_check(before, before_spoken, live_server_url, runner_token, tmp_path)

    out = StringIO()
    call_command("migrate_to_scaleway", stdout=out)
    assert "2 migrated, 0 skipped, 0 failed" in out.getvalue()
    before.refresh_from_db()
    assert before.storage_location == StorageLocation.SCALEWAY
    assert before.urls["subtitles"] == {"en": url}, "the transcript survives the migration"

    after.refresh_from_db()
    assert after.storage_location == StorageLocation.SCALEWAY
    assert after.urls["mp4"]["360"].startswith(f"/videos/aws/{after.id}/mp4/")
    transcribe_and_check(after, after_spoken, live_server_url, runner_token, tmp_path)
