"""Video storage: the storages, the upload strategies (STORAGE_BACKEND) and Range serving."""

from django.conf import settings
from django.core.files.storage import storages
from django.utils.module_loading import import_string

from .base import UploadBackend, UploadRefused

__all__ = (
    "UploadBackend",
    "UploadRefused",
    "get_upload_backend",
    "storage_replace",
    "video_storage",
)


def get_upload_backend() -> UploadBackend:
    """The upload strategy named by ``settings.STORAGE_BACKEND`` (a module path)."""
    return import_string(f"{settings.STORAGE_BACKEND}.Backend")()


def video_storage():
    """The storage holding every new video file (``STORAGES["videos"]``)."""
    return storages["videos"]


def legacy_storage():
    """The legacy AWS bucket (``STORAGES["aws_legacy"]``)."""
    return storages["aws_legacy"]


def storage_replace(storage, key: str, content) -> str:
    """Save ``content`` at exactly ``key``, replacing what is there.

    Storages pick a new name when the key is taken (or not, per ``file_overwrite``): our keys
    are part of the protocol (upload-ended, playlists), so a new name is an error.
    """
    if storage.exists(key):
        storage.delete(key)
    saved = storage.save(key, content)
    if saved != key:
        raise RuntimeError(f"Storage saved {saved!r} instead of {key!r}.")
    return saved
