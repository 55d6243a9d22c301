"""A spoken video from upload to captions in the browser, over a real uvicorn server.

Upload through the API (espeak-ng speech), the dev runner transcodes it to ready; staff click
Transcribe on the video's admin page (chromium, Playwright) and confirm; the dev runner's
whisper (tiny.en) transcribes it; the VTT holds the spoken words in order with their timings,
language ``en``; the master playlist offers it (``EXT-X-MEDIA TYPE=SUBTITLES`` and a WebVTT
media playlist) and the admin's hls.js (vendored, served by the app) lists the track.

Prints the transcription's real-time factor and the host's time from the runner's success
call to the track being served.
"""

import os
import time

import pytest
import requests
from django.contrib.auth.models import User
from django.db import connections

from marsha_runner.devrunner.client import TRANSCRIPTION_JOB, RunnerClient
from marsha_runner.videos.constants import SubtitleState
from marsha_runner.videos.models import SubtitleTrack
from tests.speech import assert_transcript, make_spoken_clip, media_seconds
from tests.videos.test_e2e import run_upload_to_ready

pytestmark = [pytest.mark.e2e, pytest.mark.ffmpeg, pytest.mark.speech, pytest.mark.browser]


@pytest.fixture
def browser_page(live_server_url, monkeypatch):
    """Debian's chromium by path, headless, set up after the server (torn down before it);
    the test's ORM calls stay synchronous beside Playwright's loop (pytest-django's advice)."""
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=args
        )
        yield browser.new_page()
        # The test's ORM calls ran beside Playwright's loop, on a connection of that context:
        # closed here, or it outlives the run and holds the test database.
        connections.close_all()
        browser.close()


def timed_success(runner: RunnerClient) -> dict:
    """Wrap the runner's transcription success call: when it was sent and answered."""
    times = {}
    send = runner.success_transcription

    def success_transcription(*args, **kwargs):
        times["sent"] = time.time()
        send(*args, **kwargs)
        times["answered"] = time.time()

    runner.success_transcription = success_transcription
    return times


def test_a_spoken_upload_gets_captions_that_hls_js_lists(
    browser_page,
    videos_root,
    live_server_url,
    seeded_runner_token,
    jwt_session,
    tmp_path,
    caplog,
):
    base, page = live_server_url, browser_page
    session = jwt_session(base)
    clip = make_spoken_clip(tmp_path / "spoken.mp4")
    spoken = media_seconds(clip)
    body, _source = run_upload_to_ready(base, session, tmp_path, seeded_runner_token, caplog, clip)
    video_id = body["id"]
    assert "subtitles" not in body["urls"]

    # Staff: Transcribe on the video's page, confirmed.
    User.objects.create_superuser("staff", "staff@example.org", "staff-password")
    page.goto(f"{base}/admin/login/?next=/admin/videos/video/{video_id}/change/")
    page.fill("#id_username", "staff")
    page.fill("#id_password", "staff-password")
    page.click("input[type=submit]")
    page.click('button[data-action="transcribe"]')
    page.click("#confirm-action")
    page.wait_for_selector(".messagelist")
    track = SubtitleTrack.objects.get(video_id=video_id)
    assert track.state == SubtitleState.PENDING

    # The dev runner's whisper.
    (tmp_path / "whisper").mkdir()
    runner = RunnerClient(base, seeded_runner_token, workdir=tmp_path / "whisper")
    assert TRANSCRIPTION_JOB in runner.job_types
    times = timed_success(runner)
    assert runner.run_until_idle(timeout=300, idle=1) == 1
    detail = session.get(f"{base}/api/videos/{video_id}/", timeout=30).json()
    track.refresh_from_db()
    # The track is served from the commit that made it ready (its URL in the video's urls,
    # the master rewritten before): its updated_on, on this machine's clock.
    served = track.updated_on.timestamp()
    (transcript,) = runner.transcripts
    print(
        f"\nwhisper tiny.en: {transcript.seconds:.2f} s for {transcript.media_seconds:.2f} s "
        f"of speech (real-time factor {transcript.seconds / transcript.media_seconds:.2f}); "
        f"host: success call answered in {times['answered'] - times['sent']:.3f} s, track "
        f"ready and served {served - times['sent']:.3f} s after the call was sent"
    )
    assert times["sent"] < served < times["answered"], "served before the runner is answered"
    track.refresh_from_db()
    assert (track.state, track.language, track.error_reason) == (SubtitleState.READY, "en", "")
    vtt_url = detail["urls"]["subtitles"]["en"]
    vtt = requests.get(f"{base}{vtt_url}", timeout=30)
    assert vtt.status_code == 200, vtt.text
    assert_transcript(vtt.text, spoken_seconds=spoken)

    # The master offers it, with a WebVTT media playlist naming the file.
    master_url = f"{base}{detail['urls']['manifests']['hls']}"
    master = requests.get(master_url, timeout=30).text.splitlines()
    media = [line for line in master if line.startswith("#EXT-X-MEDIA:TYPE=SUBTITLES")]
    assert len(media) == 1, master
    assert 'LANGUAGE="en"' in media[0] and 'NAME="English"' in media[0], media
    uri = media[0].split('URI="')[1].rstrip('"')
    playlist_url = master_url.split("?")[0].rsplit("/", 1)[0] + "/" + uri
    playlist = requests.get(playlist_url, timeout=30).text.splitlines()
    assert playlist[0] == "#EXTM3U" and playlist[-1] == "#EXT-X-ENDLIST", playlist
    assert vtt_url.rsplit("/", 1)[1] in playlist, playlist

    # hls.js in chromium lists the track (the admin player, vendored hls.js).
    page.goto(f"{base}/admin/videos/video/{video_id}/change/")
    page.wait_for_selector('#hls-player[data-subtitles="en:English"]', timeout=30_000)
    tracks = page.inner_text("#subtitle-tracks")
    assert "ready" in tracks and "\ten\t" in tracks and "VTT" in tracks, tracks
    scripts = page.eval_on_selector_all("script[src]", "nodes => nodes.map(n => n.src)")
    assert any(s.startswith(base) and s.endswith("hls.js/hls.min.js") for s in scripts)
