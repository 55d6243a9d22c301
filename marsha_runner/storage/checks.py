"""System checks: a misconfigured storage fails at start, not at the first upload."""

import shutil

from django.conf import settings
from django.core.checks import Error, register
from django.core.files.storage import storages
from django.utils.module_loading import import_string

from . import storage_public_url, url_is_signed
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


@register()
def check_persisted_urls(app_configs, **kwargs):
    """Persisted URLs never expire and never show a disk path (docs/design.md#persisted-urls).

    Builds the public URL of a sample key with each media storage, as the URL service does,
    and refuses the configuration when it is signed (a CloudFront signer, a custom storage
    class) or when a filesystem storage would publish its location on disk.
    """

    errors = []
    for alias in ("videos", "aws_legacy"):
        if alias not in settings.STORAGES:
            continue
        try:
            storage = storages[alias]
            url = storage_public_url(storage, "vod/check/master.m3u8")
        except Exception as err:  # noqa: BLE001  (a misconfigured storage is reported here)
            errors.append(
                Error(
                    f'STORAGES["{alias}"] cannot build a URL: {type(err).__name__}.',
                    id="marsha_runner.storage.E005",
                )
            )
            continue
        if url_is_signed(url):
            errors.append(
                Error(
                    f'STORAGES["{alias}"] would persist signed URLs: they expire.',
                    hint="Serve the bucket through a public-read prefix or a CDN without "
                    "signing, and set VIDEOS_SIGN_URLS_AT_READ=True for a private bucket.",
                    id="marsha_runner.storage.E004",
                )
            )
        location = getattr(storage, "location", None)
        if isinstance(location, str) and location.startswith("/") and location in url:
            errors.append(
                Error(
                    f'STORAGES["{alias}"] URLs contain its disk path {location!r}.',
                    hint="Set its base_url to a stable URL prefix (VIDEOS_URL, AWS_LEGACY_URL).",
                    id="marsha_runner.storage.E004",
                )
            )
    return errors
