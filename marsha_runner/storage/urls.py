"""Storage routes: Range-aware serving of the filesystem storages and the upload endpoint."""

import re
from urllib.parse import urlparse

from django.urls import path, re_path

from . import filesystem_routes, views

urlpatterns = [path("api/storage/upload/", views.filesystem_upload, name="storage-upload")]

# Each filesystem storage (videos, and the folder standing for the AWS legacy bucket) is
# served under its own stable URL prefix (VIDEOS_URL, AWS_LEGACY_URL), never its disk path.
for _alias, _base_url, _root in filesystem_routes():
    _prefix = re.escape(urlparse(_base_url).path.strip("/"))
    urlpatterns.append(
        re_path(
            rf"^{_prefix}/(?P<path>.+)$",
            views.serve_video_file,
            {"root": _root},
            name=f"{_alias.replace('_', '-')}-file",
        )
    )
