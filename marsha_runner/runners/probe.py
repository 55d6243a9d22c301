"""ffprobe, in one place: launch (the source), completion (a rendition) and checks all call it.

``ffprobe`` answers the raw JSON of ``-show_format -show_streams``; the helpers below read what
the project needs from it (the video stream, the duration) without guessing missing fields.
"""

import json
import subprocess

PROBE_TIMEOUT = 120


class ProbeFailed(Exception):
    """ffprobe could not read the file (missing, not visible yet, not media, timed out)."""


def ffprobe(url_or_path: str, *, timeout: int = PROBE_TIMEOUT) -> dict:
    """ffprobe JSON (format and streams) of a URL or a path; ProbeFailed when unreadable.

    ``-show_data`` adds each stream's ``extradata`` (the avcC box of an H.264 stream): the
    exact profile, constraint flags and level for the HLS ``CODECS`` attribute.
    """
    args = [
        "ffprobe",
        "-v",
        "error",
        "-show_format",
        "-show_streams",
        "-show_data",
        "-of",
        "json",
        str(url_or_path),
    ]
    try:
        done = subprocess.run(args, capture_output=True, timeout=timeout, check=False)  # noqa: S603
    except (OSError, subprocess.TimeoutExpired) as err:
        raise ProbeFailed(f"ffprobe did not answer: {type(err).__name__}") from err
    if done.returncode != 0:
        raise ProbeFailed(f"ffprobe failed (exit {done.returncode}).")
    try:
        probe = json.loads(done.stdout or b"{}")
    except ValueError as err:
        raise ProbeFailed("ffprobe printed no JSON.") from err
    if not probe.get("format") and not probe.get("streams"):
        raise ProbeFailed("ffprobe found nothing in the file.")
    return probe


def probe_video_stream(probe: dict) -> dict | None:
    """The first real video stream (cover art and other still images skipped), or None."""
    from django_peertube_runner_connector.utils.ffprobe import IMAGE_CODECS

    for stream in probe.get("streams") or []:
        if stream.get("codec_type") == "video" and stream.get("codec_name") not in IMAGE_CODECS:
            return stream
    return None


def probe_duration(probe: dict) -> float | None:
    """Seconds, from the container or else the video stream; None when neither says."""
    stream = probe_video_stream(probe) or {}
    for value in ((probe.get("format") or {}).get("duration"), stream.get("duration")):
        try:
            if value is not None and float(value) > 0:
                return float(value)
        except (TypeError, ValueError):
            continue
    return None


def probe_stored(*, key: str) -> dict:
    """ffprobe of an object of the library's video storage, with ``format.size`` filled in.

    ffprobe omits ``format.size`` for fMP4 read over HTTP; the storage knows it, and the
    library's VideoFile needs it (Marsha #2761: a missing size lost the rendition).
    """
    from django_peertube_runner_connector.storage import video_storage

    from marsha_runner.storage import storage_read_location

    probe = ffprobe(storage_read_location(video_storage, key))
    fmt = probe.setdefault("format", {})
    if not str(fmt.get("size") or "").isdigit():
        fmt["size"] = str(video_storage.size(key))
    fmt.setdefault("filename", key)
    probe.setdefault("streams", [])
    return probe
