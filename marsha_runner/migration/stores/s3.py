"""An S3 bucket as a migration store, through one boto3 client per bucket and process.

Building a boto3 client costs about 0.2 s of CPU (service model decoding, event hooks): a
client per video made that the largest cost of migrating small objects. Clients are
thread-safe, so every video and worker thread of a process shares the one of its store.
"""

from __future__ import annotations

import mimetypes
import threading

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from .base import METADATA_FIELDS, ObjectInfo, Store, Upload

# Connections of one client: the copy threads of every video of the process share them.
MAX_CONNECTIONS = 64
_clients: dict[tuple, object] = {}
_clients_lock = threading.Lock()
_session = boto3.session.Session()


def _client(storage):
    key = (
        storage.endpoint_url,
        storage.region_name,
        storage.access_key,
        storage.secret_key,
        storage.verify,
        storage.use_ssl,
        storage.addressing_style,
        storage.signature_version,
    )
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            config = storage.client_config.merge(
                Config(
                    # We compute MD5 ourselves (the S3 ETag algorithm); botocore's default
                    # CRC32 on every body would only cost CPU.
                    request_checksum_calculation="when_required",
                    response_checksum_validation="when_required",
                    # Each body's MD5 is checked against the ETag the server answers, so the
                    # SHA-256 of every body (client and server side) would prove nothing more.
                    s3={"payload_signing_enabled": False},
                    max_pool_connections=MAX_CONNECTIONS,
                    retries={"max_attempts": 3, "mode": "standard"},
                    connect_timeout=5,
                    read_timeout=60,
                )
            )
            client = _session.client(
                "s3",
                endpoint_url=storage.endpoint_url,
                region_name=storage.region_name,
                aws_access_key_id=storage.access_key or None,
                aws_secret_access_key=storage.secret_key or None,
                config=config,
                verify=storage.verify,
                use_ssl=storage.use_ssl,
            )
            _clients[key] = client
        return client


class _RangeBody:
    """A ranged GET's body: ``read`` as botocore's, or ``readinto`` straight from the HTTP
    response into the caller's buffer (a streamed part: no bytes object, no copy per read).
    One stream uses one or the other; the response stops at its Content-Length either way."""

    def __init__(self, body):
        self.body = body
        response = getattr(getattr(body, "_raw_stream", None), "_fp", None)  # http.client's
        if response is not None and hasattr(response, "readinto"):
            self.readinto = response.readinto

    def read(self, size: int = -1) -> bytes:
        return self.body.read(None if size < 0 else size)

    def close(self) -> None:
        self.body.close()


def _not_found(err: ClientError) -> bool:
    return err.response.get("Error", {}).get("Code") in (
        "404",
        "NoSuchKey",
        "NotFound",
        "NoSuchUpload",
    )


def _metadata(answer: dict) -> dict:
    return {name: answer[name] for name in METADATA_FIELDS if answer.get(name)}


def _put_metadata(key: str, metadata: dict) -> dict:
    metadata = dict(metadata)
    if not metadata.get("ContentType"):  # a file from a folder: guess as a web server would
        metadata["ContentType"] = mimetypes.guess_type(key)[0] or "binary/octet-stream"
    return metadata


class S3Store(Store):
    """A bucket (and the storage's root folder in it)."""

    keeps_metadata = True
    resumable = True
    streams_parts = True

    def __init__(self, storage):
        self.storage = storage
        self.bucket = storage.bucket_name
        self.root = (storage.location or "").strip("/")
        self.client = _client(storage)
        # One endpoint and one set of credentials: the server can copy by itself.
        self.identity = ("s3", storage.endpoint_url or "aws", storage.access_key)

    def full_key(self, key: str) -> str:
        return f"{self.root}/{key}" if self.root else key

    def _relative(self, full: str) -> str:
        return full[len(self.root) + 1 :] if self.root else full

    def list(self, prefix: str):
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.full_key(prefix)):
            for item in page.get("Contents", []):
                yield ObjectInfo(
                    key=self._relative(item["Key"]),
                    size=item["Size"],
                    etag=item.get("ETag", "").strip('"'),
                )

    def head(self, key: str) -> ObjectInfo | None:
        try:
            answer = self.client.head_object(Bucket=self.bucket, Key=self.full_key(key))
        except ClientError as err:
            if _not_found(err):
                return None
            raise
        return ObjectInfo(
            key=key,
            size=answer["ContentLength"],
            etag=answer.get("ETag", "").strip('"'),
            metadata=_metadata(answer),
        )

    def read(self, key, start=None, end=None) -> bytes:
        extra = {"Range": f"bytes={start}-{end}"} if start is not None else {}
        answer = self.client.get_object(Bucket=self.bucket, Key=self.full_key(key), **extra)
        return answer["Body"].read()

    def read_with_metadata(self, key: str) -> tuple[bytes, dict]:
        answer = self.client.get_object(Bucket=self.bucket, Key=self.full_key(key))
        return answer["Body"].read(), _metadata(answer)

    def open_range(self, key, start, end):
        answer = self.client.get_object(
            Bucket=self.bucket, Key=self.full_key(key), Range=f"bytes={start}-{end}"
        )
        return _RangeBody(answer["Body"])

    def write(self, key, data, metadata) -> str:
        answer = self.client.put_object(
            Bucket=self.bucket, Key=self.full_key(key), Body=data, **_put_metadata(key, metadata)
        )
        return answer.get("ETag", "").strip('"')

    def multipart_begin(self, key, metadata) -> Upload:
        answer = self.client.create_multipart_upload(
            Bucket=self.bucket, Key=self.full_key(key), **_put_metadata(key, metadata)
        )
        return Upload(key=self.full_key(key), id=answer["UploadId"])

    def upload_for(self, key, upload_id) -> Upload:
        return Upload(key=self.full_key(key), id=upload_id)

    def multipart_part(self, upload, number, data, offset) -> str:
        answer = self.client.upload_part(
            Bucket=self.bucket, Key=upload.key, UploadId=upload.id, PartNumber=number, Body=data
        )
        return answer["ETag"].strip('"')

    def multipart_part_copy(self, upload, number, source, source_key, start, end) -> str:
        answer = self.client.upload_part_copy(
            Bucket=self.bucket, Key=upload.key, UploadId=upload.id, PartNumber=number,
            CopySource={"Bucket": source.bucket, "Key": source.full_key(source_key)},
            CopySourceRange=f"bytes={start}-{end}",
        )  # fmt: skip
        return answer["CopyPartResult"]["ETag"].strip('"')

    def multipart_parts(self, upload) -> dict[int, tuple[str, int]] | None:
        parts = {}
        try:
            paginator = self.client.get_paginator("list_parts")
            for page in paginator.paginate(Bucket=self.bucket, Key=upload.key, UploadId=upload.id):
                for part in page.get("Parts", []):
                    parts[part["PartNumber"]] = (part["ETag"].strip('"'), part["Size"])
        except ClientError as err:
            if _not_found(err):
                return None
            raise
        return parts

    def multipart_complete(self, upload, etags) -> str:
        parts = [{"ETag": f'"{etag}"', "PartNumber": n} for n, etag in enumerate(etags, 1)]
        answer = self.client.complete_multipart_upload(
            Bucket=self.bucket, Key=upload.key, UploadId=upload.id,
            MultipartUpload={"Parts": parts},
        )  # fmt: skip
        return answer.get("ETag", "").strip('"')

    def multipart_abort(self, upload) -> None:
        try:
            self.client.abort_multipart_upload(
                Bucket=self.bucket, Key=upload.key, UploadId=upload.id
            )
        except ClientError as err:
            if not _not_found(err):
                raise

    def multipart_uploads(self, prefix) -> list[Upload]:
        paginator = self.client.get_paginator("list_multipart_uploads")
        return [
            Upload(key=item["Key"], id=item["UploadId"])
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.full_key(prefix))
            for item in page.get("Uploads", [])
        ]

    def server_copy(self, source, source_key, key) -> None:
        self.client.copy_object(
            Bucket=self.bucket,
            Key=self.full_key(key),
            CopySource={"Bucket": source.bucket, "Key": source.full_key(source_key)},
            MetadataDirective="COPY",
        )

    def delete(self, key) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.full_key(key))
