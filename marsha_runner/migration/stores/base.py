"""What every store offers the copy, and the checksums both sides of a copy agree on."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

# What an object carries besides its bytes, kept by the copy (S3 head/get names): these
# headers, by the name boto3 gives them, and the user metadata (``x-amz-meta-*``).
METADATA_HEADERS = {
    "ContentType": "content-type",
    "CacheControl": "cache-control",
    "ContentDisposition": "content-disposition",
    "ContentEncoding": "content-encoding",
    "ContentLanguage": "content-language",
    "Expires": "expires",
}
METADATA_FIELDS = (*METADATA_HEADERS, "Metadata")
READ_CHUNK = 1024 * 1024


@dataclass
class ObjectInfo:
    key: str
    size: int
    etag: str = ""  # as the server says it, quotes removed; "" when the store has none
    metadata: dict = field(default_factory=dict)


@dataclass
class Upload:
    """A multipart upload in progress at ``key`` (the store's own key, root included)."""

    key: str
    id: str


def plain_md5(etag: str) -> bool:
    """An ETag that is the MD5 of the content (a single-part S3 upload)."""
    return len(etag) == 32 and "-" not in etag


def composite_etag(part_digests: list[bytes]) -> str:
    """The ETag S3 gives a multipart upload: MD5 of the part MD5s, dash, part count."""
    return f"{hashlib.md5(b''.join(part_digests)).hexdigest()}-{len(part_digests)}"  # noqa: S324


def same_metadata(expected: dict, actual: dict) -> bool:
    """Every field the source has, the copy has alike (a store may add a default type)."""
    for name, value in expected.items():
        if name == "Metadata":
            if {k.lower(): v for k, v in value.items()} != {
                k.lower(): v for k, v in (actual.get("Metadata") or {}).items()
            }:
                return False
        elif actual.get(name) != value:
            return False
    return True


class Store:
    """The operations of one storage; ``key`` is relative to the storage (as ``url`` takes).

    ``keeps_metadata``: whether objects carry S3 metadata (a folder has none to compare).
    ``resumable``: whether the parts of an upload can be listed with their checksums.
    ``streams_parts``: whether ``multipart_part`` takes a streamed body (see copier).
    """

    identity: tuple = ()
    keeps_metadata = False
    resumable = False
    streams_parts = False  # multipart_part takes a file-like with a length, not only bytes

    def list(self, prefix: str):
        raise NotImplementedError

    def head(self, key: str) -> ObjectInfo | None:
        raise NotImplementedError

    def read(self, key: str, start: int | None = None, end: int | None = None) -> bytes:
        """The bytes of ``key`` (``start``..``end`` inclusive when given)."""
        raise NotImplementedError

    def read_with_metadata(self, key: str) -> tuple[bytes, dict]:
        raise NotImplementedError

    def open_range(self, key: str, start: int, end: int):
        """A file-like reading ``start``..``end`` (inclusive) in one request, as it streams."""
        raise NotImplementedError

    def write(self, key: str, data: bytes, metadata: dict) -> str:
        """Store ``data`` at ``key``; the ETag the store computed ("" when it has none)."""
        raise NotImplementedError

    def multipart_begin(self, key: str, metadata: dict) -> Upload:
        raise NotImplementedError

    def multipart_part(self, upload: Upload, number: int, data: bytes, offset: int) -> str:
        raise NotImplementedError

    def multipart_part_copy(
        self, upload: Upload, number: int, source: Store, source_key: str, start: int, end: int
    ) -> str:
        raise NotImplementedError

    def multipart_parts(self, upload: Upload) -> dict[int, tuple[str, int]] | None:
        """{number: (etag, size)} of the parts the store holds; None when the upload is gone."""
        raise NotImplementedError

    def multipart_complete(self, upload: Upload, etags: list[str]) -> str:
        """Assemble the parts; the ETag the store gives the whole ("" when it has none)."""
        raise NotImplementedError

    def multipart_abort(self, upload: Upload) -> None:
        raise NotImplementedError

    def multipart_uploads(self, prefix: str) -> list[Upload]:
        """Multipart uploads open under ``prefix`` (left by killed runs, or in progress)."""
        raise NotImplementedError

    def upload_for(self, key: str, upload_id: str) -> Upload:
        """The upload recorded as ``upload_id`` for ``key``, to continue or abort it."""
        raise NotImplementedError

    def server_copy(self, source: Store, source_key: str, key: str) -> None:
        raise NotImplementedError

    def delete(self, key: str) -> None:
        raise NotImplementedError

    def md5(self, key: str) -> str:
        """MD5 of the stored content, read in chunks (when ETags are not comparable)."""
        info = self.head(key)
        digest = hashlib.md5()  # noqa: S324  (an S3 ETag is MD5: the checksum both sides know)
        offset = 0
        while info and offset < info.size:
            end = min(offset + 8 * READ_CHUNK, info.size) - 1
            digest.update(self.read(key, offset, end))
            offset = end + 1
        return digest.hexdigest()
