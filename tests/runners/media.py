"""Source clips made with ffmpeg lavfi, and a recorder for the host callback."""

import subprocess
import uuid
from pathlib import Path

from marsha_runner.videos.constants import UploadState
from marsha_runner.videos.launch import video_launch_transcoding
from tests.factories import VideoFactory

OUTCOMES = []


def record_outcome(*, outcome):
    """Stands in for the videos app's callback (RUNNERS_TRANSCODING_ENDED_CALLBACK)."""
    OUTCOMES.append(outcome)


def make_clip(path: Path, *, width=1280, height=720, fps=30, seconds=2, audio=True) -> Path:
    args = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi"]
    args += ["-i", f"testsrc2=size={width}x{height}:rate={fps}:duration={seconds}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"]
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    if audio:
        args += ["-c:a", "aac", "-shortest"]
    args += ["-f", "mp4", str(path)]
    subprocess.run(args, check=True, capture_output=True, timeout=120)
    return path


def store_clip(root: Path, key: str, **kwargs) -> str:
    """Write a clip at ``key`` of the filesystem video storage rooted at ``root``."""
    target = root / key
    target.parent.mkdir(parents=True, exist_ok=True)
    make_clip(target, **kwargs)
    return key


def upload_launched(root: Path, *, stamp: int = 100, write=None, **clip):
    """A processing video whose upload (a clip, or what ``write(path)`` writes) is at its
    source key, launched as production launches it (``videos.launch``: prepare, lock and
    re-check, create); the video, reloaded."""
    video = VideoFactory(upload_state=UploadState.PROCESSING, processing_stamp=stamp)
    target = root / video.source_key(stamp)
    target.parent.mkdir(parents=True, exist_ok=True)
    if write is None:
        make_clip(target, **clip)
    else:
        write(target)
    video_launch_transcoding(video_id=video.id, stamp=stamp)
    video.refresh_from_db()
    return video


def hls_rendition(tmp_path, resolution=240, fps=30):
    """A rendition as the runner sends it: <uuid>-<res>-fragmented.mp4 + byte-range playlist."""
    src = tmp_path / "src.mp4"
    if not src.exists():
        make_clip(src, width=426, height=240, fps=fps, seconds=1)
    stem = f"{uuid.uuid4()}-{resolution}"
    segment = str(tmp_path / f"{stem}-fragmented.mp4")
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(src), "-c:v", "libx264", "-c:a", "aac",
         "-f", "hls", "-hls_playlist_type", "vod", "-hls_segment_type", "fmp4",
         "-hls_flags", "single_file", "-hls_segment_filename", segment,
         str(tmp_path / f"{stem}.m3u8")],
        check=True, capture_output=True,
    )  # fmt: skip
    return tmp_path / f"{stem}-fragmented.mp4", tmp_path / f"{stem}.m3u8"
