"""HTTP views of the storage app: Range-aware file serving and the filesystem upload endpoint."""

import mimetypes
import os
import re

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation
from django.core.handlers.asgi import ASGIRequest
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.utils._os import safe_join
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from marsha_runner.errors import error_response

from . import storage_replace, video_storage
from .base import UploadRefused
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


class UploadFileRejected(ValueError):
    """The file part breaks what the client declared: (status, message)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _check_file(upload, *, size: int, content_type: str) -> None:
    """The file part must be exactly what initiate-upload declared: its size and its type."""
    if upload.size > size:
        raise UploadFileRejected(
            413, f"The file is {upload.size} bytes, larger than the {size} bytes declared."
        )
    if upload.size < size:
        raise UploadFileRejected(
            400, f"The file is {upload.size} bytes, smaller than the {size} bytes declared."
        )
    part_type = (upload.content_type or "").split(";")[0].strip().lower()
    if part_type != content_type.lower():
        raise UploadFileRejected(
            400, f"The file part is {part_type or 'untyped'}, not the declared {content_type}."
        )


@csrf_exempt
def filesystem_upload(request):
    """Receive the multipart POST that the filesystem strategy's policy allows.

    Mirrors what S3 does with a presigned POST (policy, key, expiry, the ``Content-Type`` field,
    the declared size exactly) and, beyond S3, checks the file part's own type; then streams
    the file into video storage. Errors in the API's shape, naming the field at fault.
    """
    if request.method != "POST":
        return error_response(
            405, "Only POST uploads here.", code="method_not_allowed", headers={"Allow": "POST"}
        )
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    # Refuse before reading the body when it cannot fit (multipart overhead allowed).
    if declared > settings.UPLOAD_MAX_SIZE + CHUNK_SIZE:
        return error_response(413, "File too large.", field="file", code="too_large")

    key = request.POST.get("key", "")
    upload = request.FILES.get("file")
    try:
        policy = check_policy(token=request.POST.get("policy", ""), key=key)
        if request.POST.get("Content-Type", "") != policy["content_type"]:
            return error_response(
                403,
                f"Content-Type must be {policy['content_type']}, as declared.",
                field="Content-Type",
                code="permission_denied",
            )
        if upload is None:
            return error_response(400, "Missing file.", field="file", code="required")
        _check_file(upload, size=policy["size"], content_type=policy["content_type"])
        storage = video_storage()
        saved = storage_replace(storage, key, upload)
    except UploadRefused as err:
        return error_response(403, str(err), field="policy", code="permission_denied")
    except UploadFileRejected as err:
        code = "too_large" if err.status == 413 else "invalid"
        return error_response(err.status, str(err), field="file", code=code)
    except (SuspiciousFileOperation, ValueError):  # a key leaving the root, a NUL byte
        return error_response(400, "Invalid storage key.", field="key")
    return HttpResponse(status=204, headers={"Location": storage.url(saved)})
