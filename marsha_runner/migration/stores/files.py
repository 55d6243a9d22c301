"""A filesystem storage (the embedded default) as a migration store: files under its root.

A multipart upload is a temporary file beside the destination, renamed into place when
complete; its parts cannot be listed with checksums, so a rerun starts such a file over.
"""

from __future__ import annotations

import os
import tempfile

from .base import ObjectInfo, Store, Upload

TEMP_PREFIX = ".migrating-"


class FileStore(Store):
    def __init__(self, storage):
        self.storage = storage
        self.root = os.path.realpath(storage.location)
        self.identity = ("file", self.root)

    def _path(self, key: str) -> str:
        return self.storage.path(key)

    def _walk(self, prefix: str):
        base = self._path(prefix.rstrip("/"))
        if not os.path.isdir(base):
            return
        for directory, _dirs, files in os.walk(base):
            for name in sorted(files):
                yield directory, name

    def list(self, prefix: str):
        for directory, name in self._walk(prefix):
            if name.startswith(TEMP_PREFIX):
                continue
            path = os.path.join(directory, name)
            key = os.path.relpath(path, self.root).replace(os.sep, "/")
            yield ObjectInfo(key=key, size=os.path.getsize(path))

    def head(self, key):
        path = self._path(key)
        if not os.path.isfile(path):
            return None
        return ObjectInfo(key=key, size=os.path.getsize(path))

    def read(self, key, start=None, end=None) -> bytes:
        with open(self._path(key), "rb") as handle:
            if start is None:
                return handle.read()
            handle.seek(start)
            return handle.read(end - start + 1)

    def read_with_metadata(self, key):
        return self.read(key), {}

    def open_range(self, key, start, end):
        handle = open(self._path(key), "rb")  # noqa: SIM115  (the caller closes it)
        handle.seek(start)
        return handle

    def _temp(self, key: str) -> str:
        path = self._path(key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        handle, temp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=TEMP_PREFIX)
        os.close(handle)
        return temp

    def write(self, key, data, metadata) -> str:
        temp = self._temp(key)
        with open(temp, "wb") as handle:
            handle.write(data)
        os.replace(temp, self._path(key))
        return ""

    def multipart_begin(self, key, metadata) -> Upload:
        return Upload(key=key, id=self._temp(key))

    def upload_for(self, key, upload_id) -> Upload:
        return Upload(key=key, id=upload_id)

    def multipart_part(self, upload, number, data, offset) -> str:
        # Parts arrive out of order: each one is written at its own offset.
        with open(upload.id, "r+b") as handle:
            handle.seek(offset)
            handle.write(data)
        return ""

    def multipart_parts(self, upload):
        return None  # a temporary file says nothing of which parts it holds

    def multipart_complete(self, upload, etags) -> str:
        os.replace(upload.id, self._path(upload.key))
        return ""

    def multipart_abort(self, upload) -> None:
        if os.path.exists(upload.id):
            os.unlink(upload.id)

    def multipart_uploads(self, prefix) -> list[Upload]:
        return [
            Upload(key=name, id=os.path.join(directory, name))
            for directory, name in self._walk(prefix)
            if name.startswith(TEMP_PREFIX)
        ]

    def delete(self, key) -> None:
        if os.path.exists(self._path(key)):
            os.unlink(self._path(key))
