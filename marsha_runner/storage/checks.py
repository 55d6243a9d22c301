"""System checks: a misconfigured storage fails at start, not at the first upload."""

import shutil

from django.conf import settings
from django.core.checks import Error, register
from django.utils.module_loading import import_string

from .base import UploadBackend


@register()
def check_storage_backend(app_configs, **kwargs):
    path = getattr(settings, "STORAGE_BACKEND", "")
    try:
        backend = import_string(f"{path}.Backend")
    except (ImportError, ValueError):  # ValueError: an empty module name
        return [
            Error(
                f"STORAGE_BACKEND {path!r} is not an upload strategy module.",
                hint="Use marsha_runner.storage.s3, .filesystem or .dummy.",
                id="marsha_runner.storage.E001",
            )
        ]
    if not (isinstance(backend, type) and issubclass(backend, UploadBackend)):
        return [
            Error(
                f"{path}.Backend is not an UploadBackend.",
                id="marsha_runner.storage.E001",
            )
        ]
    return []


@register()
def check_videos_storage(app_configs, **kwargs):
    if "videos" not in settings.STORAGES:
        return [
            Error(
                'STORAGES has no "videos" alias: video files have nowhere to go.',
                hint="Set VIDEOS_STORAGE to filesystem, s3 or memory.",
                id="marsha_runner.storage.E002",
            )
        ]
    return []


@register()
def check_ffmpeg(app_configs, **kwargs):
    return [
        Error(
            f"{tool} is not on PATH: sources cannot be probed nor thumbnails made.",
            hint="Install ffmpeg (apt-get install ffmpeg).",
            id="marsha_runner.storage.E003",
        )
        for tool in ("ffprobe", "ffmpeg")
        if shutil.which(tool) is None
    ]
