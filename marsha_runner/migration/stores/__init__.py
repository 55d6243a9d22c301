"""Object stores the migration copies between: an S3 bucket or a filesystem storage.

A thin I/O layer over a Django storage (its bucket, credentials and root come from
``STORAGES``), with what a byte-exact copy needs and Django's Storage API lacks: paginated
listing with sizes and ETags, ranged and streamed reads, multipart writes that can be listed,
continued and aborted, server-side copy, metadata.
"""

from storages.backends.s3 import S3Storage

from .base import (
    METADATA_FIELDS,
    ObjectInfo,
    Store,
    Upload,
    composite_etag,
    plain_md5,
    same_metadata,
)
from .files import FileStore
from .s3 import S3Store

__all__ = (
    "METADATA_FIELDS",
    "FileStore",
    "ObjectInfo",
    "S3Store",
    "Store",
    "Upload",
    "composite_etag",
    "plain_md5",
    "same_metadata",
    "store_for",
)


def store_for(storage) -> Store:
    if isinstance(storage, S3Storage):
        return S3Store(storage)
    if hasattr(storage, "location") and hasattr(storage, "path"):
        return FileStore(storage)
    raise TypeError(f"Cannot migrate objects of a {type(storage).__name__}.")
