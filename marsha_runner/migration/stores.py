"""Object stores the migration copies between: an S3 bucket or a filesystem storage.

A thin I/O layer over a Django storage (its bucket, credentials and root come from
``STORAGES``), with what a byte-exact copy needs and Django's Storage API lacks: paginated
listing with sizes and ETags, ranged reads, multipart writes, server-side copy, metadata.
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import tempfile
from dataclasses import dataclass, field

# What an object carries besides its bytes, kept by the copy (S3 head/get names).
METADATA_FIELDS = (
    "ContentType",
    "CacheControl",
    "ContentDisposition",
    "ContentEncoding",
    "ContentLanguage",
    "Metadata",
)
READ_CHUNK = 1024 * 1024


@dataclass
class ObjectInfo:
    key: str
    size: int
    etag: str = ""  # as the server says it, quotes removed; "" when the store has none
    metadata: dict = field(default_factory=dict)


def plain_md5(etag: str) -> bool:
    """An ETag that is the MD5 of the content (a single-part S3 upload)."""
    return len(etag) == 32 and "-" not in etag


def composite_etag(part_digests: list[bytes]) -> str:
    """The ETag S3 gives a multipart upload: MD5 of the part MD5s, dash, part count."""
    return f"{hashlib.md5(b''.join(part_digests)).hexdigest()}-{len(part_digests)}"  # noqa: S324


class Store:
    """The operations of one storage; ``key`` is relative to the storage (as ``url`` takes)."""

    identity: tuple = ()

    def list(self, prefix: str):
        raise NotImplementedError

    def head(self, key: str) -> ObjectInfo | None:
        raise NotImplementedError

    def read(self, key: str, start: int | None = None, end: int | None = None) -> bytes:
        """The bytes of ``key`` (``start``..``end`` inclusive when given)."""
        raise NotImplementedError

    def write(self, key: str, data: bytes, metadata: dict) -> str:
        """Store ``data`` at ``key``; the ETag the store computed ("" when it has none)."""
        raise NotImplementedError

    def multipart_begin(self, key: str, metadata: dict):
        raise NotImplementedError

    def multipart_part(self, upload, number: int, data: bytes, offset: int) -> str:
        raise NotImplementedError

    def multipart_complete(self, upload, etags: list[str]) -> str:
        """Assemble the parts; the ETag the store gives the whole ("" when it has none)."""
        raise NotImplementedError

    def multipart_abort(self, upload) -> None:
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


class S3Store(Store):
    """A bucket, through one thread-safe boto3 client built from the storage's settings."""

    def __init__(self, storage, *, max_connections: int = 10, attempts: int = 3):
        import boto3
        from botocore.config import Config

        self.storage = storage
        self.bucket = storage.bucket_name
        self.root = (storage.location or "").strip("/")
        config = storage.client_config.merge(
            Config(
                # We compute MD5 ourselves (the S3 ETag algorithm); botocore's default CRC32
                # on every body would only cost CPU.
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                max_pool_connections=max_connections,
                retries={"max_attempts": attempts, "mode": "standard"},
                connect_timeout=5,
                read_timeout=60,
            )
        )
        self.client = boto3.session.Session().client(
            "s3",
            endpoint_url=storage.endpoint_url,
            region_name=storage.region_name,
            aws_access_key_id=storage.access_key or None,
            aws_secret_access_key=storage.secret_key or None,
            config=config,
            verify=storage.verify,
            use_ssl=storage.use_ssl,
        )
        # One endpoint and one set of credentials: the server can copy by itself.
        self.identity = ("s3", storage.endpoint_url or "aws", storage.access_key)

    def _full(self, key: str) -> str:
        return f"{self.root}/{key}" if self.root else key

    def _relative(self, full: str) -> str:
        return full[len(self.root) + 1 :] if self.root else full

    def list(self, prefix: str):
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self._full(prefix)):
            for item in page.get("Contents", []):
                yield ObjectInfo(
                    key=self._relative(item["Key"]),
                    size=item["Size"],
                    etag=item.get("ETag", "").strip('"'),
                )

    def head(self, key: str) -> ObjectInfo | None:
        from botocore.exceptions import ClientError

        try:
            answer = self.client.head_object(Bucket=self.bucket, Key=self._full(key))
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return ObjectInfo(
            key=key,
            size=answer["ContentLength"],
            etag=answer.get("ETag", "").strip('"'),
            metadata={name: answer[name] for name in METADATA_FIELDS if answer.get(name)},
        )

    def read(self, key, start=None, end=None) -> bytes:
        extra = {"Range": f"bytes={start}-{end}"} if start is not None else {}
        answer = self.client.get_object(Bucket=self.bucket, Key=self._full(key), **extra)
        return answer["Body"].read()

    def read_with_metadata(self, key: str) -> tuple[bytes, dict]:
        answer = self.client.get_object(Bucket=self.bucket, Key=self._full(key))
        metadata = {name: answer[name] for name in METADATA_FIELDS if answer.get(name)}
        return answer["Body"].read(), metadata

    def write(self, key, data, metadata) -> str:
        answer = self.client.put_object(
            Bucket=self.bucket, Key=self._full(key), Body=data, **_put_metadata(key, metadata)
        )
        return answer.get("ETag", "").strip('"')

    def multipart_begin(self, key, metadata):
        answer = self.client.create_multipart_upload(
            Bucket=self.bucket, Key=self._full(key), **_put_metadata(key, metadata)
        )
        return {"key": self._full(key), "id": answer["UploadId"]}

    def multipart_part(self, upload, number, data, offset) -> str:
        answer = self.client.upload_part(
            Bucket=self.bucket, Key=upload["key"], UploadId=upload["id"], PartNumber=number,
            Body=data,
        )  # fmt: skip
        return answer["ETag"].strip('"')

    def multipart_complete(self, upload, etags) -> str:
        parts = [{"ETag": f'"{etag}"', "PartNumber": n} for n, etag in enumerate(etags, 1)]
        answer = self.client.complete_multipart_upload(
            Bucket=self.bucket, Key=upload["key"], UploadId=upload["id"],
            MultipartUpload={"Parts": parts},
        )  # fmt: skip
        return answer.get("ETag", "").strip('"')

    def multipart_abort(self, upload) -> None:
        self.client.abort_multipart_upload(
            Bucket=self.bucket, Key=upload["key"], UploadId=upload["id"]
        )

    def server_copy(self, source, source_key, key) -> None:
        self.client.copy_object(
            Bucket=self.bucket,
            Key=self._full(key),
            CopySource={"Bucket": source.bucket, "Key": source._full(source_key)},
            MetadataDirective="COPY",
        )

    def delete(self, key) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._full(key))


def _put_metadata(key: str, metadata: dict) -> dict:
    metadata = dict(metadata)
    if not metadata.get("ContentType"):  # a file from a folder: guess as a web server would
        metadata["ContentType"] = mimetypes.guess_type(key)[0] or "binary/octet-stream"
    return metadata


class FileStore(Store):
    """A filesystem storage (the embedded default): files under its location."""

    def __init__(self, storage):
        self.storage = storage
        self.root = os.path.realpath(storage.location)
        self.identity = ("file", self.root)

    def _path(self, key: str) -> str:
        return self.storage.path(key)

    def list(self, prefix: str):
        base = self._path(prefix.rstrip("/"))
        if not os.path.isdir(base):
            return
        for directory, _dirs, files in os.walk(base):
            for name in sorted(files):
                if name.startswith(".migrating-"):
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

    def _temp(self, key: str) -> str:
        path = self._path(key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        handle, temp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".migrating-")
        os.close(handle)
        return temp

    def write(self, key, data, metadata) -> str:
        temp = self._temp(key)
        with open(temp, "wb") as handle:
            handle.write(data)
        os.replace(temp, self._path(key))
        return ""

    def multipart_begin(self, key, metadata):
        return {"key": key, "temp": self._temp(key)}

    def multipart_part(self, upload, number, data, offset) -> str:
        # Parts arrive out of order: each one is written at its own offset.
        with open(upload["temp"], "r+b") as handle:
            handle.seek(offset)
            handle.write(data)
        return ""

    def multipart_complete(self, upload, etags) -> str:
        os.replace(upload["temp"], self._path(upload["key"]))
        return ""

    def multipart_abort(self, upload) -> None:
        if os.path.exists(upload["temp"]):
            os.unlink(upload["temp"])

    def delete(self, key) -> None:
        if os.path.exists(self._path(key)):
            os.unlink(self._path(key))


def store_for(storage, **options) -> Store:
    from storages.backends.s3 import S3Storage

    if isinstance(storage, S3Storage):
        return S3Store(storage, **options)
    if hasattr(storage, "location") and hasattr(storage, "path"):
        return FileStore(storage)
    raise TypeError(f"Cannot migrate objects of a {type(storage).__name__}.")
