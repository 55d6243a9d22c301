"""storage_public_url's prefix path gives, key for key, the URL the backend itself builds.

The reference is built here from the backends' public API: django-storages' own name
cleaning, then botocore's unsigned URL (or the storage's ``url`` for a CDN or a disk).
Building a URL needs no server (botocore builds it offline), so the S3 storages here point at
an address nothing listens on.
"""

import pytest
from botocore.signers import RequestSigner
from django.core.exceptions import SuspiciousOperation
from django.core.files.storage import FileSystemStorage
from storages.utils import clean_name, safe_join

from marsha_runner.storage import storage_public_url
from marsha_runner.storage.s3 import VideoS3Storage

KEYS = [
    "vod/8a1c4b2e-0f0e-4a4b-9d51-5b0b8a9f1e11/video/1600000000/master.m3u8",
    "aws/8a1c4b2e/cmaf/1600000000.m3u8",
    "thumbnail.jpg",
    # keys the prefix path must leave to the backend: quoting, dot segments, a leading slash
    "vod/a b/é.mp4",
    "vod/x/../y.mp4",
    "vod/./y.mp4",
    "/vod/y.mp4",
    "vod/y.mp4?x=1",
    "vod/a+b#c.mp4",
]


def s3_storage(**options):
    base = {
        "bucket_name": "videos",
        "endpoint_url": "http://127.0.0.1:9",
        "region_name": "us-east-1",
        "access_key": "key",
        "secret_key": "secret",
        "addressing_style": "path",
        "signature_version": "s3v4",
        "querystring_auth": True,
    }
    return VideoS3Storage(**{**base, **options})


def backend_url(storage, key):
    """The backend's own URL of ``key``: the reference."""
    if isinstance(storage, VideoS3Storage) and not storage.custom_domain:
        try:
            name = safe_join(storage.location, clean_name(key))
        except ValueError as err:
            raise SuspiciousOperation(f"Attempted access to {key!r} denied.") from err
        return storage.unsigned_connection.meta.client.generate_presigned_url(
            "get_object", Params={"Bucket": storage.bucket_name, "Key": name}
        )
    return storage.url(key)


def outcome(build, storage, key):
    """The URL, or the refusal (a key outside a storage's location), to compare both."""
    try:
        return build(storage, key)
    except SuspiciousOperation as err:
        return repr(err)


@pytest.mark.parametrize(
    "storage",
    [
        pytest.param(lambda: s3_storage(), id="s3-path"),
        pytest.param(lambda: s3_storage(addressing_style="virtual"), id="s3-virtual"),
        pytest.param(lambda: s3_storage(location="media"), id="s3-location"),
        pytest.param(lambda: s3_storage(custom_domain="cdn.example.org"), id="s3-cdn"),
        pytest.param(
            lambda: FileSystemStorage(location="/tmp/videos", base_url="/videos/"), id="disk"
        ),
        pytest.param(
            lambda: FileSystemStorage(
                location="/tmp/videos", base_url="https://media.example.org/videos/"
            ),
            id="disk-absolute",
        ),
    ],
)
def test_prefix_path_matches_the_backend(storage, monkeypatch):
    storage = storage()
    for key in KEYS:
        assert outcome(storage_public_url, storage, key) == outcome(backend_url, storage, key), key
    assert "X-Amz-" not in storage_public_url(storage, KEYS[0])

    # The prefix is built once and kept: a plain key no longer reaches the backend.
    expected = backend_url(storage, KEYS[1])

    def backend_called(*args, **kwargs):
        raise AssertionError("the backend built a URL the prefix should have")

    if isinstance(storage, VideoS3Storage) and not storage.custom_domain:
        # Whichever client would build it: botocore's signer builds every presigned URL.
        monkeypatch.setattr(RequestSigner, "generate_presigned_url", backend_called)
    else:
        monkeypatch.setattr(storage, "url", backend_called)
    assert storage_public_url(storage, KEYS[1]) == expected
