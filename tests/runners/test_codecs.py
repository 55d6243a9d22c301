"""CODECS in master.m3u8 name each rendition as it is: checked against ffprobe of the file."""

import json
import re
import subprocess

import pytest

from marsha_runner.runners.probe import hls_codecs
from tests.runners.factories import job_tree, rendition_complete

pytestmark = [pytest.mark.ffmpeg, pytest.mark.django_db]

# profile_idc of each profile name ffprobe prints (ISO/IEC 14496-10 Annex A).
PROFILE_IDC = {"Constrained Baseline": 0x42, "Baseline": 0x42, "Main": 0x4D, "High": 0x64}


def runner_rendition(tmp_path, *, name, profile, width, height, fps):
    """A rendition as a runner uploads it (fMP4 single file + byte-range playlist), encoded
    with the given H.264 profile (x264 uses no more than the preset allows: not ultrafast);
    x264 picks the level the size and rate need."""
    stem = f"{name}-{height}"
    segment = tmp_path / f"{stem}-fragmented.mp4"
    playlist = tmp_path / f"{stem}.m3u8"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate={fps}:duration=1",
         "-f", "lavfi", "-i", "sine=frequency=440:duration=1",
         "-c:v", "libx264", "-preset", "veryfast", "-profile:v", profile, "-pix_fmt", "yuv420p",
         "-c:a", "aac", "-shortest",
         "-f", "hls", "-hls_playlist_type", "vod", "-hls_segment_type", "fmp4",
         "-hls_flags", "single_file", "-hls_segment_filename", str(segment), str(playlist)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return segment, playlist


def ffprobe_streams(path) -> dict:
    done = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-of", "json", str(path)],
        check=True,
        capture_output=True,
    )
    return {s["codec_type"]: s for s in json.loads(done.stdout)["streams"]}


def test_codecs_of_baseline_main_and_high_1080p60_renditions(
    videos_root, tmp_path, django_capture_on_commit_callbacks
):
    sources = {  # resolution: (profile, width, fps)
        1080: ("high", 1920, 60),
        360: ("main", 640, 30),
        240: ("baseline", 426, 30),
    }
    video, parent, children = job_tree(resolutions=tuple(sources))
    files = {}
    for job in (parent, *children):
        resolution = job.payload["output"]["resolution"]
        profile, width, fps = sources[resolution]
        files[resolution] = runner_rendition(
            tmp_path, name=profile, profile=profile, width=width, height=resolution, fps=fps
        )
        with django_capture_on_commit_callbacks(execute=True):
            rendition_complete(job, *files[resolution])

    master = (videos_root / "vod/abc/video/1/master.m3u8").read_text()
    entries = re.findall(r"#EXT-X-STREAM-INF:(.*)\n(.*)\n", master)
    assert len(entries) == 3, master
    seen = {}
    for attributes, uri in entries:
        resolution = int(uri.removesuffix(".m3u8").rsplit("-", 1)[1])
        streams = ffprobe_streams(files[resolution][0])
        video_stream, audio_stream = streams["video"], streams["audio"]
        codecs = re.search(r'CODECS="([^"]+)"', attributes)[1].split(",")
        avc, mp4a = codecs
        assert avc[:5] == "avc1." and int(avc[5:7], 16) == PROFILE_IDC[video_stream["profile"]]
        assert int(avc[9:11], 16) == video_stream["level"], (avc, video_stream["level"])
        assert (audio_stream["profile"], mp4a) == ("LC", "mp4a.40.2")
        seen[resolution] = (video_stream["profile"], video_stream["level"], avc)
    assert seen[1080][:2] == ("High", 42)  # 1080p60 needs level 4.2, never the old 3.1
    assert seen[360][0] == "Main" and seen[360][2].startswith("avc1.4D")
    assert seen[240][0] == "Constrained Baseline" and seen[240][2].startswith("avc1.42")
    assert "FRAME-RATE=60" in next(a for a, uri in entries if uri.endswith("-1080.m3u8"))


def test_codecs_omitted_when_the_stream_cannot_be_named():
    """No avcC box and no profile: no CODECS rather than a guess; HEVC likewise."""
    h264 = {"codec_type": "video", "codec_name": "h264", "level": 31}
    aac = {"codec_type": "audio", "codec_name": "aac", "profile": "LC"}
    assert hls_codecs({"streams": [h264, aac]}) is None
    assert hls_codecs({"streams": [{**h264, "profile": "Main"}, aac]}) == "avc1.4D001F,mp4a.40.2"
    assert hls_codecs({"streams": [{**h264, "profile": "High", "level": -99}]}) is None
    assert hls_codecs({"streams": [{**h264, "codec_name": "hevc", "profile": "Main"}]}) is None
    assert hls_codecs({"streams": [{**h264, "profile": "Main"}, {**aac, "profile": None}]}) is None
