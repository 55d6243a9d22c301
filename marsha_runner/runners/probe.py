"""ffprobe, in one place: launch (the source), completion (a rendition) and checks all call it.

``ffprobe`` answers the raw JSON of ``-show_format -show_streams``; the helpers below read what
the project needs from it (the video stream, the duration) without guessing missing fields.
"""

import json
import subprocess

from django_peertube_runner_connector.utils.ffprobe import IMAGE_CODECS

from marsha_runner.storage import storage_read_location, video_storage

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
        raise ProbeFailed(_ffprobe_complaint(done.stderr) or f"ffprobe exit {done.returncode}")
    try:
        probe = json.loads(done.stdout or b"{}")
    except ValueError as err:
        raise ProbeFailed("ffprobe printed no JSON.") from err
    if not probe.get("format") and not probe.get("streams"):
        raise ProbeFailed("ffprobe found nothing in the file.")
    return probe


def _ffprobe_complaint(stderr: bytes) -> str:
    """ffprobe's last complaint without the input it names (a URL may carry a signature)."""
    lines = [line for line in stderr.decode(errors="replace").splitlines() if line.strip()]
    return lines[-1].rsplit(": ", 1)[-1].strip()[:200] if lines else ""


def probe_video_stream(probe: dict) -> dict | None:
    """The first real video stream (cover art and other still images skipped), or None."""
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

    probe = ffprobe(storage_read_location(video_storage(), key))
    fmt = probe.setdefault("format", {})
    if not str(fmt.get("size") or "").isdigit():
        fmt["size"] = str(video_storage().size(key))
    fmt.setdefault("filename", key)
    probe.setdefault("streams", [])
    return probe


# --- HLS CODECS (RFC 6381), from the stream as it is -------------------------------------------
# Without the avcC box, ffprobe's profile name gives profile_idc; the constraint flags are then
# those the name implies (Constrained Baseline sets constraint_set1).
AVC_PROFILES = {
    "baseline": (0x42, 0x00),
    "constrained baseline": (0x42, 0x40),
    "main": (0x4D, 0x00),
    "extended": (0x58, 0x00),
    "high": (0x64, 0x00),
    "high 10": (0x6E, 0x00),
    "high 4:2:2": (0x7A, 0x00),
    "high 4:4:4 predictive": (0xF4, 0x00),
}
AAC_OBJECT_TYPES = {"lc": 2, "he-aac": 5, "he-aacv2": 29}
AUDIO_CODECS = {"mp3": "mp4a.40.34", "opus": "Opus", "ac3": "ac-3", "eac3": "ec-3", "flac": "fLaC"}


def _extradata(stream: dict) -> bytes:
    """The bytes of ffprobe's ``extradata`` hex dump (``-show_data``); b"" when absent."""
    data = bytearray()
    for line in (stream.get("extradata") or "").splitlines():
        _, sep, rest = line.partition(": ")
        if not sep:
            continue
        for group in rest[:40].split():
            try:
                data += bytes.fromhex(group)
            except ValueError:
                break
    return bytes(data)


def _avc_codec(stream: dict) -> str | None:
    """``avc1.PPCCLL``: from the avcC box when ffprobe showed it, else profile name + level."""
    avcc = _extradata(stream)
    if len(avcc) >= 4 and avcc[0] == 1:
        return f"avc1.{avcc[1]:02X}{avcc[2]:02X}{avcc[3]:02X}"
    known = AVC_PROFILES.get(str(stream.get("profile") or "").lower())
    try:
        level = int(stream.get("level"))
    except (TypeError, ValueError):
        return None
    if known is None or not 0 < level < 256:
        return None
    profile_idc, constraints = known
    return f"avc1.{profile_idc:02X}{constraints:02X}{level:02X}"


def _audio_codec(stream: dict) -> str | None:
    name = stream.get("codec_name")
    if name == "aac":
        object_type = AAC_OBJECT_TYPES.get(str(stream.get("profile") or "").lower())
        return f"mp4a.40.{object_type}" if object_type else None
    return AUDIO_CODECS.get(name)


def hls_codecs(probe: dict) -> str | None:
    """The ``CODECS`` value of a rendition (``avc1.64002A,mp4a.40.2``), or None when one of
    its streams cannot be named exactly: a player trusts CODECS, so none beats a wrong one."""
    video = probe_video_stream(probe)
    if video is None or video.get("codec_name") != "h264":
        return None
    codecs = [_avc_codec(video)]
    audio = next((s for s in probe.get("streams") or [] if s.get("codec_type") == "audio"), None)
    if audio is not None:
        codecs.append(_audio_codec(audio))
    return None if None in codecs else ",".join(codecs)
