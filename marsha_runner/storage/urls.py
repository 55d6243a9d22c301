"""Storage routes: Range-aware serving under VIDEOS_ROOT and the filesystem upload endpoint."""

import re

from django.conf import settings
from django.urls import path, re_path

from . import views

urlpatterns = [path("api/storage/upload/", views.filesystem_upload, name="storage-upload")]

if settings.STORAGES.get("videos", {}).get("BACKEND", "").endswith("FileSystemStorage"):
    _prefix = re.escape(settings.VIDEOS_ROOT.strip("/"))
    urlpatterns.append(
        re_path(rf"^{_prefix}/(?P<path>.+)$", views.serve_video_file, name="videos-file")
    )
