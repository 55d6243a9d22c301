"""Spoken test media (Debian's espeak-ng) and the checks a transcript of it must pass.

The tests that transcribe use real speech, so whisper's output can be compared with what was
said: every word, in order, inside the spoken time.
"""

import re
import subprocess
from pathlib import Path

# Words whisper tiny.en hears right from espeak-ng through AAC re-encodings ("transcoding"
# came back "trends coding" from one of them).
SENTENCE = "Welcome to the course. Today we will learn how videos are made ready for every screen."
CUE_RE = re.compile(
    r"^(\d{2}):(\d{2}):(\d{2})\.(\d{3}) --> (\d{2}):(\d{2}):(\d{2})\.(\d{3})$", re.MULTILINE
)


def make_spoken_clip(
    path: Path, *, text: str = SENTENCE, width: int = 426, height: int = 240, fps: int = 25
) -> Path:
    """An mp4 (H.264 + AAC) whose audio is ``text`` spoken by espeak-ng, as long as the
    speech."""
    wav = path.with_suffix(".wav")
    subprocess.run(
        ["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(wav), text],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi",
         "-i", f"testsrc2=size={width}x{height}:rate={fps}", "-i", str(wav),
         "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
         "-c:a", "aac", "-b:a", "96k", "-shortest", "-f", "mp4", str(path)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    wav.unlink()
    return path


def media_seconds(path: Path) -> float:
    done = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
         str(path)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return float(done.stdout.strip())


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def vtt_cues(vtt: str) -> list[tuple[float, float, str]]:
    """(start, end, text) of each cue of a WebVTT document."""
    assert vtt.startswith("WEBVTT"), vtt[:100]
    cues = []
    for block in re.split(r"\n\s*\n", vtt.strip())[1:]:
        match = CUE_RE.search(block)
        assert match, block
        h1, m1, s1, ms1, h2, m2, s2, ms2 = (int(g) for g in match.groups())
        start = h1 * 3600 + m1 * 60 + s1 + ms1 / 1000
        end = h2 * 3600 + m2 * 60 + s2 + ms2 / 1000
        cues.append((start, end, block[match.end() :].strip()))
    return cues


def assert_transcript(vtt: str, *, spoken_seconds: float, text: str = SENTENCE) -> None:
    """Every spoken word, in order (nothing else), in cues that follow one another within the
    spoken time."""
    cues = vtt_cues(vtt)
    assert cues, vtt
    assert words(" ".join(cue[2] for cue in cues)) == words(text), vtt
    previous_end = 0.0
    for start, end, _text in cues:
        assert previous_end - 0.05 <= start < end <= spoken_seconds + 0.5, (cues, spoken_seconds)
        previous_end = end
    assert cues[-1][1] >= spoken_seconds * 0.6, (cues, spoken_seconds)
