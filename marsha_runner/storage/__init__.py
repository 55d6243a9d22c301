"""Video storage: the storages, the upload strategies (STORAGE_BACKEND) and Range serving."""

import contextlib
import os
import re
import tempfile
from urllib.parse import parse_qs, urlparse

from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError
from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.core.files import File
from django.core.files.storage import FileSystemStorage, storages
from django.utils.module_loading import import_string
from storages.backends.s3 import S3Storage
from storages.utils import clean_name, safe_join

from .base import UploadBackend, UploadRefused
from .boto import s3_client

__all__ = (
    "UploadBackend",
    "UploadRefused",
    "filesystem_routes",
    "get_upload_backend",
    "legacy_storage",
    "storage_copy",
    "storage_public_url",
    "storage_read_location",
    "storage_replace",
    "storage_serves",
    "storage_is_s3",
    "storage_signed_url",
    "url_is_signed",
    "video_storage",
)

# Query parameters that make a URL die: a persisted URL must carry none of them.
SIGNATURE_PARAMETERS = ("X-Amz-Signature", "X-Amz-Expires", "Signature", "Expires")


def get_upload_backend() -> UploadBackend:
    """The upload strategy named by ``settings.STORAGE_BACKEND`` (a module path)."""
    return import_string(f"{settings.STORAGE_BACKEND}.Backend")()


def video_storage():
    """The storage holding every new video file (``STORAGES["videos"]``)."""
    return storages["videos"]


def legacy_storage():
    """The legacy AWS bucket (``STORAGES["aws_legacy"]``)."""
    return storages["aws_legacy"]


def storage_is_s3(storage) -> bool:
    """The one test of "this storage is an S3 bucket" (signing, copies, the location column)."""
    return isinstance(storage, S3Storage)


def url_is_signed(url: str) -> bool:
    """Whether ``url`` carries a signature or an expiry (a presigned URL): such a URL dies,
    so it is never persisted, and one more query parameter would break its signature."""
    if "?" not in url:  # most URLs, at a backfill's rate
        return False
    query = parse_qs(urlparse(url).query)
    return any(name in query for name in SIGNATURE_PARAMETERS)


def _s3_params(storage, key: str) -> dict:
    """The object's bucket and key, as the storage itself names it (under its ``location``)."""
    try:
        name = safe_join(storage.location, clean_name(key))
    except ValueError as err:
        raise SuspiciousOperation(f"Attempted access to {key!r} denied.") from err
    return {"Bucket": storage.bucket_name, "Key": name}


def storage_public_url(storage, key: str) -> str:
    """The URL to persist for ``key``: never signed, never expiring, never a disk path.

    S3: the custom domain (CDN) or the endpoint's plain object URL, whatever
    ``querystring_auth`` says (that option only signs internal reads). Filesystem: the
    storage's ``base_url`` (VIDEOS_URL) plus the key. The system check refuses a storage
    whose public URL would still carry a signature.

    A key that needs no quoting (our keys: uuids, stamps, digits) is appended to the
    storage's URL prefix, built once per storage: the backend's own URL building costs
    about a millisecond a call, which a backfill of 100,000 videos calls 2 million times.
    """
    if _PLAIN_KEY.fullmatch(key):
        prefix = _public_url_prefix(storage)
        if prefix is not None:
            return prefix + key
    return _backend_public_url(storage, key)


# Keys whose URL is the prefix plus the key itself: no character to quote, no "." or ".."
# segment, no leading slash (which a URL join would resolve differently).
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*(?:/[A-Za-z0-9_-][A-Za-z0-9._-]*)*")
_PREFIX_PROBE = "probe-key"
_PREFIX_ATTRIBUTE = "_marsha_public_url_prefix"
_UNSIGNED_CLIENT_ATTRIBUTE = "_marsha_unsigned_client"


def _backend_public_url(storage, key: str) -> str:
    if storage_is_s3(storage) and not storage.custom_domain:
        return _unsigned_client(storage).generate_presigned_url(
            "get_object", Params=_s3_params(storage, key)
        )
    return storage.url(key)


def _per_storage(storage, attribute: str, build):
    """``build()`` once per storage instance, kept on it: settings changes replace the
    instance (the storages handler), hence what was built from it. None is kept too; two
    threads may both build it, alike."""
    if attribute not in storage.__dict__:
        storage.__dict__[attribute] = build()
    return storage.__dict__[attribute]


def _unsigned_client(storage):
    """The client of django-storages' ``unsigned_connection``, made as it makes it, once per
    storage on the process's boto3 session: django-storages makes a session and a resource per
    thread, 0.2 s of CPU each (the first switch of a migration paid it)."""
    return _per_storage(
        storage,
        _UNSIGNED_CLIENT_ATTRIBUTE,
        lambda: s3_client(
            region_name=storage.region_name,
            use_ssl=storage.use_ssl,
            endpoint_url=storage.endpoint_url,
            config=storage.client_config.merge(Config(signature_version=UNSIGNED)),
            verify=storage.verify,
        ),
    )


def _public_url_prefix(storage) -> str | None:
    """What the backend puts before a plain key, or None when its URL of a plain key is not
    prefix plus key (a query string, say): then every URL is built by the backend."""

    def build():
        url = _backend_public_url(storage, _PREFIX_PROBE)
        plain = url.endswith(_PREFIX_PROBE) and "?" not in url
        return url[: -len(_PREFIX_PROBE)] if plain else None

    return _per_storage(storage, _PREFIX_ATTRIBUTE, build)


def storage_signed_url(storage, key: str, *, expire: int) -> str:
    """A URL of ``key`` valid ``expire`` seconds from now (a private bucket, at read time)."""
    if storage_is_s3(storage):
        return storage.connection.meta.client.generate_presigned_url(
            "get_object", Params=_s3_params(storage, key), ExpiresIn=expire
        )
    return storage.url(key)


def storage_read_location(storage, key: str) -> str:
    """What ffmpeg/ffprobe should open for ``key`` on this machine: a local path when the
    storage has one, else its (internally signed) URL. Nothing parses a URL back to a path.
    """
    try:
        return storage.path(key)
    except NotImplementedError:
        return storage.url(key)


def filesystem_routes() -> list[tuple[str, str, str]]:
    """(alias, URL prefix, root) of each filesystem storage whose files we serve with Range."""
    routes = []
    for alias in ("videos", "aws_legacy"):
        config = settings.STORAGES.get(alias) or {}
        if config.get("BACKEND", "").endswith("FileSystemStorage"):
            options = config.get("OPTIONS") or {}
            if options.get("location") and options.get("base_url"):
                routes.append((alias, options["base_url"], options["location"]))
    return routes


def storage_serves(storage, key: str) -> bool:
    """Whether ``storage`` serves the first byte of ``key`` now (a GET, not a HEAD): a store
    coming back from an outage lists objects before it serves them. False for a missing
    object; an outage raises."""
    if storage_is_s3(storage):
        client = storage.connection.meta.client
        try:
            answer = client.get_object(**_s3_params(storage, key), Range="bytes=0-0")
        except ClientError as err:
            status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status == 416:  # an empty object has no first byte: served all the same
                return True
            if status == 404:
                return False  # NoSuchKey
            raise
        answer["Body"].read()
        answer["Body"].close()
        return True
    return storage.exists(key)


def storage_replace(storage, key: str, content) -> str:
    """Save ``content`` at exactly ``key``, replacing what is there.

    Storages pick a new name when the key is taken (or not, per ``file_overwrite``): our keys
    are part of the protocol (upload-ended, playlists), so a new name is an error.
    """
    path = _local_path(storage, key)
    if path is not None:
        _file_replace(storage, path, content)
        return key
    if not (storage_is_s3(storage) and storage.file_overwrite) and storage.exists(key):
        # An S3 PUT replaces an object atomically: deleting first would leave a moment with
        # no object (a player reading master.m3u8 then gets a 404). Other storages pick a
        # new name when the key is taken: the old file goes first there.
        storage.delete(key)
    saved = storage.save(key, content)
    if saved != key:
        raise RuntimeError(f"Storage saved {saved!r} instead of {key!r}.")
    return saved


def storage_copy(source, source_key: str, target, target_key: str) -> str:
    """Copy an object between storages, server-side when both are S3 buckets behind one
    endpoint and one key pair (CopyObject: no byte passes through us), else streamed.

    Idempotent: a target of the source's size is left as is (a retried task copies once).
    For tasks only: it may take minutes, so never in a request nor under a row lock.
    """
    size = source.size(source_key)
    if target.exists(target_key) and target.size(target_key) == size:
        return "already there"
    if storage_is_s3(source) and storage_is_s3(target) and _same_s3_account(source, target):
        client = target.connection.meta.client
        client.copy(_s3_params(source, source_key), **_s3_params(target, target_key))
        return "copied server-side"
    with source.open(source_key, "rb") as handle:
        storage_replace(target, target_key, handle)
    return "copied"


def _same_s3_account(a, b) -> bool:
    return (a.endpoint_url, a.access_key) == (b.endpoint_url, b.access_key)


def _local_path(storage, key: str) -> str | None:
    """The file behind ``key`` on a disk storage (an in-memory one has paths, but no files)."""
    return storage.path(key) if isinstance(storage, FileSystemStorage) else None


def _file_replace(storage, path: str, content) -> None:
    """On a disk, delete-then-save races with another writer of the same key (two processes
    concluding one transcoding): write beside it and rename, which replaces atomically."""
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=".replace-")
    try:
        with os.fdopen(descriptor, "wb") as out:
            for chunk in (content if hasattr(content, "chunks") else File(content)).chunks():
                out.write(chunk)
        os.chmod(temporary, storage.file_permissions_mode or 0o644)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def storage_listdir(storage, prefix: str) -> tuple[list[str], list[str]]:
    """(directories, files) under ``prefix``; empty when it does not exist (any backend)."""
    try:
        return storage.listdir(prefix)
    except (FileNotFoundError, NotADirectoryError):
        return [], []


def storage_dir_prune(storage, prefix: str) -> None:
    """Remove ``prefix`` and its parents while empty, on a filesystem storage (S3 has no
    directories); so a cleaned folder is not listed again on the next run."""
    try:
        path = storage.path(prefix)
    except NotImplementedError:
        return
    root = storage.path("")
    while path.startswith(root) and os.path.normpath(path) != os.path.normpath(root):
        try:
            os.rmdir(path)
        except OSError:
            return
        path = os.path.dirname(path)
