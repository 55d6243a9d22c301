"""An S3 bucket as a migration store, through one client per bucket and process.

Building a boto3 client costs about 0.2 s of CPU (service model decoding, event hooks): a
client per video made that the largest cost of migrating small objects. Clients are
thread-safe, so every video and worker thread of a process shares the one of its store. The
calls every object costs (GET, PUT, listing) go as plain signed HTTP (``s3_http``) unless
``MIGRATION_PLAIN_HTTP`` is off, the storage goes through proxies or has no credentials.
"""

from __future__ import annotations

import mimetypes
import os
import threading
from urllib.parse import urlsplit

from botocore.config import Config
from botocore.exceptions import ClientError
from django.conf import settings

from marsha_runner.storage.boto import default_credentials, s3_client

from .base import METADATA_FIELDS, ObjectInfo, Store, Upload
from .s3_http import S3Http, SigV4

# Connections of one client: the copy threads of every video of the process share them.
MAX_CONNECTIONS = 64
_clients: dict[tuple, tuple] = {}
_clients_lock = threading.Lock()
URL_PROBE = "marsha-runner-url-probe"


def _clients_for(storage) -> tuple:
    """(boto3 client, plain HTTP client or None) of the storage's bucket, made once."""
    key = (
        storage.bucket_name,
        storage.endpoint_url,
        storage.region_name,
        storage.access_key,
        storage.secret_key,
        storage.security_token,
        storage.verify,
        storage.use_ssl,
        storage.addressing_style,
        storage.signature_version,
        settings.MIGRATION_PLAIN_HTTP,
    )
    with _clients_lock:
        clients = _clients.get(key)
        if clients is None:
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
            client = s3_client(
                endpoint_url=storage.endpoint_url,
                region_name=storage.region_name,
                aws_access_key_id=storage.access_key or None,
                aws_secret_access_key=storage.secret_key or None,
                aws_session_token=storage.security_token or None,
                config=config,
                verify=storage.verify,
                use_ssl=storage.use_ssl,
            )
            clients = _clients[key] = (client, _plain_http(storage, client))
        return clients


def _plain_http(storage, client) -> S3Http | None:
    """The bucket as plain HTTP, at the URL and with the credentials boto3 would use."""
    if (
        not settings.MIGRATION_PLAIN_HTTP
        or storage.client_config.proxies
        or storage.signature_version not in (None, "s3v4")
    ):
        return None
    if storage.access_key and storage.secret_key:
        static = (storage.access_key, storage.secret_key, storage.security_token or "")
        credentials = lambda: static  # noqa: E731
    else:
        chain = default_credentials()
        if chain is None:
            return None

        def credentials():  # refreshed by boto3 when they expire
            frozen = chain.get_frozen_credentials()
            return frozen.access_key, frozen.secret_key, frozen.token or ""

    url = urlsplit(
        client.generate_presigned_url(
            "get_object", Params={"Bucket": storage.bucket_name, "Key": URL_PROBE}
        )
    )
    return S3Http(
        base_url=f"{url.scheme}://{url.netloc}{url.path.removesuffix(URL_PROBE)}",
        signer=SigV4(client.meta.region_name, credentials),
        verify=os.environ.get("AWS_CA_BUNDLE", True) if storage.verify is None else storage.verify,
        timeouts=(client.meta.config.connect_timeout, client.meta.config.read_timeout),
    )


def _not_found(err: ClientError) -> bool:
    return err.response.get("Error", {}).get("Code") in (
        "404",
        "NoSuchKey",
        "NotFound",
        "NoSuchUpload",
    )


def _metadata(answer: dict) -> dict:
    """As boto3 names the fields, Expires as sent (the plain HTTP calls' form too)."""
    metadata = {name: answer[name] for name in METADATA_FIELDS if answer.get(name)}
    if answer.get("ExpiresString"):
        metadata["Expires"] = answer["ExpiresString"]
    return metadata


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
        self.client, self.http = _clients_for(storage)
        # One endpoint and one set of credentials: the server can copy by itself.
        self.identity = ("s3", storage.endpoint_url or "aws", storage.access_key)

    def full_key(self, key: str) -> str:
        return f"{self.root}/{key}" if self.root else key

    def _relative(self, full: str) -> str:
        return full[len(self.root) + 1 :] if self.root else full

    def list(self, prefix: str):
        if self.http is not None:
            for key, size, etag in self.http.list(self.full_key(prefix)):
                yield ObjectInfo(key=self._relative(key), size=size, etag=etag)
            return
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
        if self.http is not None:
            return self.http.get(self.full_key(key))
        answer = self.client.get_object(Bucket=self.bucket, Key=self.full_key(key))
        return answer["Body"].read(), _metadata(answer)

    def open_range(self, key, start, end):
        if self.http is not None:
            return self.http.open_range(self.full_key(key), start, end)
        answer = self.client.get_object(
            Bucket=self.bucket, Key=self.full_key(key), Range=f"bytes={start}-{end}"
        )
        return answer["Body"]

    def write(self, key, data, metadata) -> str:
        if self.http is not None:
            return self.http.put(self.full_key(key), data, _put_metadata(key, metadata))
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
