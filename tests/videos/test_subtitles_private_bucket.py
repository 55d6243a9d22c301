"""Subtitles on a private bucket: the master's ``EXT-X-MEDIA TYPE=SUBTITLES`` names its WebVTT
media playlist by a ``URI`` attribute; our playlist view serves it with a fresh token and
signs the VTT it names, so players find the captions without a public bucket."""

import pytest
import requests
from django.core.files.base import ContentFile
from django.core.files.storage import storages

from tests.videos.test_urls import STAMP, private_hls  # noqa: F401

VTT = "WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nHello.\n"


@pytest.mark.s3
def test_the_subtitle_playlist_and_its_vtt_are_served_signed(private_hls, client):  # noqa: F811
    video, _other, hls = private_hls
    storage, folder = storages["videos"], video.output_prefix(STAMP)
    storage.save(f"{folder}/{STAMP}-en.vtt", ContentFile(VTT.encode()))
    storage.save(
        f"{folder}/{STAMP}-subtitles-en.m3u8",
        ContentFile(
            "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXTINF:1.000,\n"
            f"{STAMP}-en.vtt\n#EXT-X-ENDLIST\n".encode()
        ),
    )
    storage.delete(video.master_playlist_key(STAMP))
    storage.save(
        video.master_playlist_key(STAMP),
        ContentFile(
            "#EXTM3U\n#EXT-X-VERSION:3\n"
            '#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subtitles",NAME="English",LANGUAGE="en",'
            f'DEFAULT=NO,AUTOSELECT=YES,FORCED=NO,URI="{STAMP}-subtitles-en.m3u8"\n'
            '#EXT-X-STREAM-INF:BANDWIDTH=300000,RESOLUTION=426x240,SUBTITLES="subtitles"\n'
            f"{STAMP}-240.m3u8\n".encode()
        ),
    )
    client.logout()  # the token in the path is the permission

    master = client.get(hls).content.decode().splitlines()
    media = next(line for line in master if line.startswith("#EXT-X-MEDIA:TYPE=SUBTITLES"))
    uri = media.split('URI="')[1].split('"')[0]
    assert uri.startswith(f"/api/videos/{video.id}/hls/") and uri.endswith(
        f"/{STAMP}-subtitles-en.m3u8"
    ), media
    playlist = client.get(uri)
    assert playlist.status_code == 200
    vtt_url = next(line for line in playlist.content.decode().splitlines() if "en.vtt" in line)
    assert "X-Amz-Signature" in vtt_url, vtt_url
    assert requests.get(vtt_url, timeout=10).text == VTT
    assert requests.get(vtt_url.split("?")[0], timeout=10).status_code == 403  # private
