"""Video storage: the storages, the upload strategies (STORAGE_BACKEND) and Range serving."""

from django.conf import settings
from django.core.files.storage import storages
from django.utils.module_loading import import_string

from .base import UploadBackend, UploadRefused

__all__ = ("UploadBackend", "UploadRefused", "get_upload_backend", "video_storage")


def get_upload_backend() -> UploadBackend:
    """The upload strategy named by ``settings.STORAGE_BACKEND`` (a module path)."""
    return import_string(f"{settings.STORAGE_BACKEND}.Backend")()


def video_storage():
    """The storage holding every new video file (``STORAGES["videos"]``)."""
    return storages["videos"]


def legacy_storage():
    """The legacy AWS bucket (``STORAGES["aws_legacy"]``)."""
    return storages["aws_legacy"]
