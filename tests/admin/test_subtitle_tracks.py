"""Staff see the subtitle tracks: a read-only list with filters and search, and the tracks of a
video on its page (language, state, reason, VTT link, job link)."""

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from marsha_runner.videos.constants import SubtitleState, TranscodePipeline, UploadState
from marsha_runner.videos.models import SubtitleTrack, Video
from tests.factories import VideoFactory

from .helpers import change, changelist, staff_user

pytestmark = pytest.mark.django_db

STAMP = 1_700_000_000


def tracks_of(video, *states):
    made = []
    for state in states:
        ready = state == SubtitleState.READY
        made.append(
            SubtitleTrack.objects.create(
                video=video,
                stamp=STAMP,
                job_uuid=uuid.uuid4(),
                state=state,
                language="en" if ready else "",
                key=f"{video.output_prefix(STAMP)}/{STAMP}-en.vtt" if ready else "",
                error_reason="" if ready else "The transcription job was cancelled.",
            )
        )
    return made


@pytest.fixture
def video(videos_root):
    return VideoFactory(
        title="Spoken lecture",
        upload_state=UploadState.READY,
        transcode_pipeline=TranscodePipeline.PEERTUBE,
        uploaded_on=Video.stamp_to_datetime(STAMP),
        resolutions=[240],
    )


def test_the_video_page_shows_its_tracks(client, video):
    ready, failed = tracks_of(video, SubtitleState.READY, SubtitleState.ERROR)
    client.force_login(staff_user(username="reader"))
    html = client.get(change(Video, video.pk)).content.decode()
    table = html.split('id="subtitle-tracks"')[1].split("</table>")[0]
    assert table.count("<tr>") == 3, table  # head + two tracks
    assert f'href="/videos/{ready.key}"' in table and ">VTT<" in table
    assert "The transcription job was cancelled." in table
    for track in (ready, failed):
        assert f"/admin/runners/runnerjob/?q={track.job_uuid}" in table


def test_the_list_filters_and_searches(client, video):
    ready, failed = tracks_of(video, SubtitleState.READY, SubtitleState.ERROR)
    other = VideoFactory(title="Other")
    (pending,) = tracks_of(other, SubtitleState.PENDING)
    client.force_login(staff_user(username="reader"))

    def listed(query=""):
        html = client.get(changelist(SubtitleTrack) + query).content.decode()
        return {t for t in (ready, failed, pending) if f"?q={t.job_uuid}" in html}

    assert listed() == {ready, failed, pending}
    assert listed("?state__exact=error") == {failed}
    assert listed("?language__exact=en") == {ready}
    assert listed(f"?q={other.id}") == {pending}
    assert listed(f"?q={failed.job_uuid}") == {failed}
    assert listed("?q=spoken") == {ready, failed}
    assert client.get(change(SubtitleTrack, ready.pk)).status_code == 200
    assert client.post(change(SubtitleTrack, ready.pk), {}).status_code == 403  # read-only


def test_the_list_runs_as_many_queries_with_5_rows_as_with_50(client, video):
    client.force_login(staff_user(username="reader"))
    counts = []
    for total in (5, 50):
        while SubtitleTrack.objects.count() < total:
            tracks_of(VideoFactory(), SubtitleState.READY)
        with CaptureQueriesContext(connection) as queries:
            assert client.get(changelist(SubtitleTrack)).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1], counts
