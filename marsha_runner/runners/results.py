"""A runner's result is checked before the job moves (issue 6, item 7).

A success that does not deliver what the job asked for is refused (400) while the job is still
processing and nothing is stored: the runner then reports an error, and the job is retried by
another runner up to ``TRANSCODING_RUNNER_MAX_FAILURE``, instead of one broken runner erroring
the video for good at completion.

A transcription's file is a WebVTT. HLS: the video file holds a video stream of the job's
resolution (its short side, as PeerTube counts it); the playlist is text naming exactly that
file, by its bare name (its own directory), and nothing else: no other file, no ``..``, no
absolute path or URL.
"""

import re
import tempfile
from contextlib import contextmanager
from urllib.parse import urlparse

from django.core.files.uploadedfile import UploadedFile
from django_peertube_runner_connector.models import RunnerJob, RunnerJobType

from .probe import ProbeFailed, ffprobe, probe_video_stream
from .problems import RunnerRefusal

# A bare file name: no directory, no leading dot, nothing a shell or a URL would read otherwise.
FILE_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}")
URI_ATTRIBUTE_RE = re.compile(r'URI="([^"]*)"')
PLAYLIST_MAX_BYTES = 1 << 20
TRANSCODING_TYPES = (
    RunnerJobType.VOD_HLS_TRANSCODING,
    RunnerJobType.VOD_WEB_VIDEO_TRANSCODING,
    RunnerJobType.VOD_AUDIO_MERGE_TRANSCODING,
)


def _refuse(detail: str) -> RunnerRefusal:
    return RunnerRefusal(400, "runner_job_result_invalid", detail)


@contextmanager
def _local_path(upload: UploadedFile):
    """A path ffprobe can read: the upload's temporary file, or a copy of an in-memory one."""
    if hasattr(upload, "temporary_file_path"):
        yield upload.temporary_file_path()
        return
    with tempfile.NamedTemporaryFile(suffix=".mp4") as copy:
        upload.seek(0)
        for chunk in upload.chunks():
            copy.write(chunk)
        copy.flush()
        yield copy.name


def _video_check(upload: UploadedFile, *, resolution: int | None) -> None:
    try:
        with _local_path(upload) as path:
            probe = ffprobe(path)
    except ProbeFailed as err:
        raise _refuse(f"The video file is not readable media: {err}") from err
    finally:
        upload.seek(0)
    stream = probe_video_stream(probe)
    if stream is None:
        raise _refuse("The video file has no video stream.")
    width, height = int(stream.get("width") or 0), int(stream.get("height") or 0)
    if resolution and min(width, height) != resolution:
        raise _refuse(f"The video is {width}x{height}; the job asked for {resolution}p.")


def _playlist_uris(text: str) -> list[str]:
    uris = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            uris += URI_ATTRIBUTE_RE.findall(line)
        else:
            uris.append(line)
    return uris


def _playlist_check(upload: UploadedFile, *, video_name: str) -> None:
    upload.seek(0)
    raw = upload.read(PLAYLIST_MAX_BYTES + 1)
    upload.seek(0)
    if len(raw) > PLAYLIST_MAX_BYTES:
        raise _refuse("The playlist is too large.")
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
    except UnicodeDecodeError as err:
        raise _refuse("The playlist is not UTF-8 text.") from err
    if not text.lstrip("\ufeff").startswith("#EXTM3U"):
        raise _refuse("The playlist does not start with #EXTM3U.")
    uris = _playlist_uris(text)
    if not uris:
        raise _refuse("The playlist names no file.")
    for uri in uris:
        if uri != video_name:
            shown = uri if len(uri) <= 100 else uri[:100] + "…"
            if urlparse(uri).scheme or uri.startswith("/"):
                raise _refuse(f"The playlist names an absolute location: {shown!r}.")
            if "/" in uri or "\\" in uri:
                raise _refuse(f"The playlist names a file outside its directory: {shown!r}.")
            raise _refuse(f"The playlist names {shown!r}, not the uploaded {video_name!r}.")


def _vtt_check(upload: UploadedFile) -> None:
    upload.seek(0)
    head = upload.read(16)
    upload.seek(0)
    if not isinstance(head, bytes) or not head.removeprefix(b"\xef\xbb\xbf").startswith(b"WEBVTT"):
        raise _refuse("The transcript is not a WebVTT file.")


def runner_job_result_check(*, job: RunnerJob, result: dict) -> None:
    """Refuse (400) a result that does not deliver what ``job`` asked for; reads files only."""
    if job.type == RunnerJobType.VIDEO_TRANSCRIPTION:
        _vtt_check(result["vttFile"])
        return
    if job.type not in TRANSCODING_TYPES:
        return
    video = result["video_file"]
    name = video.name or ""
    if not FILE_NAME_RE.fullmatch(name) or ".." in name:
        raise _refuse("The video file name must be a bare file name.")
    output = (job.payload or {}).get("output") or {}
    try:
        resolution = int(output.get("resolution") or 0) or None
    except (TypeError, ValueError):
        resolution = None
    _video_check(video, resolution=resolution)
    if job.type == RunnerJobType.VOD_HLS_TRANSCODING:
        _playlist_check(result["resolution_playlist_file"], video_name=name)
