"""HTTP views of the storage app: Range-aware file serving and the filesystem upload endpoint."""

import mimetypes
import os
import re

from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation
from django.http import (
    FileResponse,
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


@require_http_methods(["GET", "HEAD"])
def serve_video_file(request, path):
    """Serve a file under VIDEOS_ROOT, answering HTTP Range requests (players, ffmpeg)."""
    try:
        full_path = safe_join(settings.VIDEOS_ROOT, path)
    except (SuspiciousFileOperation, ValueError) as err:
        raise Http404("Not found.") from err
    if not os.path.isfile(full_path):
        raise Http404("Not found.")
    size = os.path.getsize(full_path)
    content_type = mimetypes.guess_type(full_path)[0] or "application/octet-stream"

    match = RANGE_RE.match(request.headers.get("Range", "").strip())
    if not match or match.groups() == ("", ""):
        response = FileResponse(open(full_path, "rb"), content_type=content_type)  # noqa: SIM115
        response["Accept-Ranges"] = "bytes"
        return response

    first, last = match.groups()
    if first == "":  # suffix range: the last N bytes
        start, end = max(size - int(last), 0), size - 1
    else:
        start, end = int(first), min(int(last), size - 1) if last else size - 1
    if start >= size or start > end:
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        return response

    handle = open(full_path, "rb")  # noqa: SIM115  (closed by the generator)
    handle.seek(start)
    length = end - start + 1
    response = StreamingHttpResponse(
        _file_chunks(handle, length), status=206, content_type=content_type
    )
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
    from . import video_storage

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
        if storage.exists(key):
            storage.delete(key)
        saved = storage.save(key, upload)
    except UploadRefused as err:
        return JsonResponse({"error": str(err)}, status=403)
    except SuspiciousFileOperation:
        return JsonResponse({"error": "Invalid storage key."}, status=400)
    return HttpResponse(status=204, headers={"Location": storage.url(saved)})
