"""HTTP views of the storage app: Range-aware file serving and the filesystem upload endpoint."""

import mimetypes
import os
import re

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation
from django.core.handlers.asgi import ASGIRequest
from django.http import (
    Http404,
    HttpResponse,
    HttpResponseNotAllowed,
    JsonResponse,
    StreamingHttpResponse,
)
from django.utils._os import safe_join
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from .base import VIDEO_CONTENT_TYPE_PREFIX, UploadRefused
from .filesystem import check_policy

RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")
CHUNK_SIZE = 64 * 1024
mimetypes.add_type("application/vnd.apple.mpegurl", ".m3u8")
mimetypes.add_type("video/mp4", ".mp4")


def _file_chunks(handle, remaining):
    with handle:
        while remaining > 0:
            chunk = handle.read(min(CHUNK_SIZE, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            yield chunk


async def _afile_chunks(handle, remaining):
    """Under ASGI Django loads a *sync* iterator whole into memory: read in threads instead."""
    read = sync_to_async(handle.read, thread_sensitive=False)
    try:
        while remaining > 0:
            chunk = await read(min(CHUNK_SIZE, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            yield chunk
    finally:
        handle.close()


def _video_path(path: str, root: str) -> str:
    """The file under ``root`` that ``path`` names, or 404 (no ``..``, no link out)."""
    root = os.path.realpath(root)
    try:
        full_path = os.path.realpath(safe_join(root, path))
    except (SuspiciousFileOperation, ValueError) as err:
        raise Http404("Not found.") from err
    if os.path.commonpath([root, full_path]) != root or not os.path.isfile(full_path):
        raise Http404("Not found.")
    return full_path


@require_http_methods(["GET", "HEAD"])
def serve_video_file(request, path, root=None):
    """Serve a file of a filesystem storage, answering HTTP Range requests (players, ffmpeg)."""
    full_path = _video_path(path, root or settings.VIDEOS_ROOT)
    size = os.path.getsize(full_path)
    content_type = mimetypes.guess_type(full_path)[0] or "application/octet-stream"

    match = RANGE_RE.match(request.headers.get("Range", "").strip())
    if not match or match.groups() == ("", ""):
        status, start, end = 200, 0, size - 1
    else:
        first, last = match.groups()
        if first == "":  # suffix range: the last N bytes
            start, end = max(size - int(last), 0), size - 1
        else:
            start, end = int(first), min(int(last), size - 1) if last else size - 1
        if start >= size or start > end:
            response = HttpResponse(status=416)
            response["Content-Range"] = f"bytes */{size}"
            return response
        status = 206

    length = end - start + 1
    if request.method == "HEAD" or length == 0:
        response = HttpResponse(status=status, content_type=content_type)
    else:
        handle = open(full_path, "rb")  # noqa: SIM115  (closed by the generator)
        handle.seek(start)
        chunks = _afile_chunks if isinstance(request, ASGIRequest) else _file_chunks
        response = StreamingHttpResponse(
            chunks(handle, length), status=status, content_type=content_type
        )
    if status == 206:
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    response["Content-Length"] = str(length)
    response["Accept-Ranges"] = "bytes"
    return response


@csrf_exempt
def filesystem_upload(request):
    """Receive the multipart POST that the filesystem strategy's policy allows.

    Mirrors what S3 does with a presigned POST: checks the signed policy, the key, the size
    cap and the content type, then streams the file into video storage.
    """
    from . import storage_replace, video_storage

    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    # Refuse before reading the body when it cannot fit (multipart overhead allowed).
    if declared > settings.UPLOAD_MAX_SIZE + CHUNK_SIZE:
        return JsonResponse({"error": "File too large."}, status=413)

    key = request.POST.get("key", "")
    upload = request.FILES.get("file")
    try:
        max_size = check_policy(token=request.POST.get("policy", ""), key=key)
        if upload is None:
            raise UploadRefused("Missing file.")
        if upload.size > max_size:
            return JsonResponse({"error": "File too large."}, status=413)
        content_type = request.POST.get("Content-Type", "")
        if not content_type.startswith(VIDEO_CONTENT_TYPE_PREFIX):
            raise UploadRefused("Content type must be video/*.")
        storage = video_storage()
        saved = storage_replace(storage, key, upload)
    except UploadRefused as err:
        return JsonResponse({"error": str(err)}, status=403)
    except (SuspiciousFileOperation, ValueError):  # a key leaving the root, a NUL byte
        return JsonResponse({"error": "Invalid storage key."}, status=400)
    return HttpResponse(status=204, headers={"Location": storage.url(saved)})
