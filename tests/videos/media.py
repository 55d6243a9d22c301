"""Test media generated with ffmpeg lavfi: small, deterministic, made on the fly."""

import subprocess
from pathlib import Path


def _ffmpeg(*args: str) -> None:
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args],
        check=True,
        timeout=120,
    )


def make_clip(path: Path, *, height: int = 720, fps: int = 30, seconds: float = 3) -> Path:
    """A 16:9 testsrc2 clip with a sine audio track (H.264 + AAC in mp4)."""
    width = height * 16 // 9 // 2 * 2
    _ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate={fps}:duration={seconds}",
        "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", str(fps),
        "-c:a", "aac", "-b:a", "64k", "-shortest", "-movflags", "+faststart",
        str(path),
    )  # fmt: skip
    return path


def make_audio_only(path: Path, *, seconds: float = 2) -> Path:
    _ffmpeg(
        "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
        "-c:a", "aac", "-f", "mp4", str(path),
    )  # fmt: skip
    return path


def make_truncated(source: Path, path: Path, *, keep: int = 512) -> Path:
    """The first bytes of a real mp4: cut inside its moov atom (at the start: faststart)."""
    path.write_bytes(source.read_bytes()[:keep])
    return path
