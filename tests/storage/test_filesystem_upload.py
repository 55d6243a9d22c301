"""The filesystem upload strategy end to end: a signed policy, then our own upload endpoint.

It must refuse what S3 refuses for a presigned POST (see test_s3.py), and never write outside
VIDEOS_ROOT.
"""

import time
import uuid
from pathlib import Path

import pytest
from django.core import signing
from django.core.files.storage import storages
from django.core.files.uploadedfile import SimpleUploadedFile

from marsha_runner.storage import UploadRefused, get_upload_backend
from marsha_runner.storage.base import UploadPolicy
from marsha_runner.storage.filesystem import SALT, Backend
from tests.api_errors import api_errors

SIZE = 1000


def new_key():
    return f"tmp/{uuid.uuid4()}/video/{int(time.time())}"


def initiate(key, *, size=SIZE, expires_in=60, content_type="video/mp4"):
    return Backend().initiate_upload(
        UploadPolicy(key=key, content_type=content_type, size=size, expires_in=expires_in)
    )


def post(client, presigned, data, *, file_type="video/mp4", **overrides):
    fields = {**presigned["fields"], **overrides}
    fields["file"] = SimpleUploadedFile("clip.mp4", data, content_type=file_type)
    return client.post(presigned["url"], fields)


def files_under(path):
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())


@pytest.fixture
def outside(videos_root):
    """Everything beside the root, to prove nothing was written there."""
    before = files_under(videos_root.parent)
    yield
    after = files_under(videos_root.parent)
    assert [p for p in after if not p.startswith("videos/")] == [
        p for p in before if not p.startswith("videos/")
    ]


def test_backend_is_filesystem(videos_root):
    assert isinstance(get_upload_backend(), Backend)


def test_upload_accepted(client, videos_root, outside):
    key = new_key()
    presigned = initiate(key)
    assert presigned["url"] == "/api/storage/upload/"
    assert set(presigned["fields"]) == {"key", "Content-Type", "policy"}

    response = post(client, presigned, b"v" * SIZE)

    assert response.status_code == 204, response.content
    storage = storages["videos"]
    assert storage.exists(key)
    with storage.open(key) as handle:
        assert handle.read() == b"v" * SIZE
    assert (videos_root / key).is_file()
    assert response["Location"] == storage.url(key)
    assert files_under(videos_root) == [key]


def test_upload_twice_replaces(client, videos_root):
    """A retried upload replaces the object instead of landing under another name."""
    key = new_key()
    presigned = initiate(key, size=5)
    assert post(client, presigned, b"first").status_code == 204

    assert post(client, presigned, b"again").status_code == 204

    assert files_under(videos_root) == [key]
    assert (videos_root / key).read_bytes() == b"again"


def test_refuses_tampered_policy(client, videos_root, outside):
    key = new_key()
    presigned = initiate(key)
    token = presigned["fields"]["policy"]
    tampered = token[:-3] + ("AAA" if token[-3:] != "AAA" else "BBB")

    response = post(client, presigned, b"v" * 10, policy=tampered)

    assert api_errors(response, 403) == {"policy": "Invalid upload policy."}
    assert files_under(videos_root) == []


def test_refuses_policy_signed_with_another_key(client, videos_root, outside):
    key = new_key()
    presigned = initiate(key)
    forged = signing.dumps(
        {"key": key, "size": 2 * SIZE, "content_type": "video/mp4", "expires_in": 3600},
        key="not-the-secret-key",
        salt=SALT,
        compress=True,
    )

    response = post(client, presigned, b"v" * 2 * SIZE, policy=forged)

    assert response.status_code == 403
    assert files_under(videos_root) == []


@pytest.mark.parametrize("policy", ["", "garbage", signing.dumps([1, 2], salt=SALT)])
def test_refuses_malformed_policy(client, videos_root, policy):
    presigned = initiate(new_key())

    response = post(client, presigned, b"v" * 10, policy=policy)

    assert response.status_code == 403
    assert files_under(videos_root) == []


def test_refuses_expired_policy(client, videos_root, outside):
    key = new_key()
    presigned = initiate(key, expires_in=1)
    time.sleep(2.1)

    response = post(client, presigned, b"v" * 10)

    assert api_errors(response, 403) == {"policy": "Upload policy expired."}
    assert files_under(videos_root) == []


def test_refuses_another_key(client, videos_root, outside):
    key, other = new_key(), new_key()

    response = post(client, initiate(key), b"v" * 10, key=other)

    assert response.status_code == 403
    assert files_under(videos_root) == []


def test_refuses_oversize(client, videos_root, outside):
    key = new_key()

    response = post(client, initiate(key), b"v" * (SIZE + 1))

    assert api_errors(response, 413) == {
        "file": f"The file is {SIZE + 1} bytes, larger than the {SIZE} bytes declared."
    }
    assert files_under(videos_root) == []


def test_refuses_less_than_declared(client, videos_root, outside):
    response = post(client, initiate(new_key()), b"v" * (SIZE - 1))

    assert "smaller than the 1000 bytes declared" in api_errors(response, 400)["file"]
    assert files_under(videos_root) == []


@pytest.mark.parametrize("file_type", ["text/plain", "video/webm", "application/octet-stream"])
def test_refuses_a_file_part_of_another_type(client, videos_root, outside, file_type):
    """The file part's own type must be the declared one, not only the Content-Type field."""
    response = post(client, initiate(new_key()), b"v" * SIZE, file_type=file_type)

    assert api_errors(response, 400) == {
        "file": f"The file part is {file_type}, not the declared video/mp4."
    }
    assert files_under(videos_root) == []


def test_a_file_part_type_with_parameters_is_its_type(client, videos_root):
    key = new_key()
    response = post(client, initiate(key), b"v" * SIZE, file_type="video/mp4; codecs=avc1")
    assert response.status_code == 204, response.content
    assert files_under(videos_root) == [key]


def test_refuses_declared_length_over_the_cap(client, videos_root, settings):
    """A body announced bigger than any upload is refused before it is read."""
    settings.UPLOAD_MAX_SIZE = 100
    presigned = initiate(new_key())
    fields = {**presigned["fields"], "file": SimpleUploadedFile("a.mp4", b"v" * 200_000)}

    response = client.post(presigned["url"], fields)

    assert "file" in api_errors(response, 413)
    assert files_under(videos_root) == []


@pytest.mark.parametrize(
    "content_type", ["text/plain", "", "application/octet-stream", "video/webm"]
)
def test_refuses_non_video_content_type(client, videos_root, outside, content_type):
    key = new_key()

    response = post(client, initiate(key), b"v" * SIZE, **{"Content-Type": content_type})

    assert api_errors(response, 403) == {
        "Content-Type": "Content-Type must be video/mp4, as declared."
    }
    assert files_under(videos_root) == []


def test_refuses_missing_file(client, videos_root):
    presigned = initiate(new_key())

    response = client.post(presigned["url"], presigned["fields"])

    assert api_errors(response, 400) == {"file": "Missing file."}
    assert files_under(videos_root) == []


def test_refuses_get(client, videos_root):
    response = client.get("/api/storage/upload/")
    assert "POST" in api_errors(response, 405)[None]
    assert response["Allow"] == "POST"


@pytest.mark.parametrize(
    "key", ["../outside", "tmp/../../outside", "/tmp/outside-abs", "a/\x00b", ""]
)
def test_initiate_refuses_escaping_key(videos_root, key):
    with pytest.raises(UploadRefused, match=r"^Invalid storage key\.$"):
        initiate(key)


def signed_presigned(key):
    """What initiate would return for ``key`` if validate() were bypassed."""
    token = signing.dumps(
        {"key": key, "size": SIZE, "content_type": "video/mp4", "expires_in": 60},
        salt=SALT,
        compress=True,
    )
    return {
        "url": "/api/storage/upload/",
        "fields": {"key": key, "Content-Type": "video/mp4", "policy": token},
    }


@pytest.mark.parametrize("key", ["../outside", "tmp/../../outside", "/tmp/outside-abs", "a/\x00b"])
def test_escaping_key_in_a_valid_policy_writes_nothing_outside(client, videos_root, outside, key):
    """Even a policy signed for an escaping key cannot make the endpoint leave the root."""
    response = post(client, signed_presigned(key), b"v" * SIZE)

    assert api_errors(response, 400) == {"key": "Invalid storage key."}
    assert files_under(videos_root) == []
    assert not (videos_root.parent / "outside").exists()
    assert not (videos_root.parent.parent / "outside").exists()
    assert not Path("/tmp/outside-abs").exists()


def test_encoded_dots_in_a_key_are_a_plain_name(client, videos_root, outside):
    """The key is not URL-decoded: ``%2e%2e`` is a directory name inside the root."""
    response = post(client, signed_presigned("tmp/%2e%2e/x"), b"v" * SIZE)

    assert response.status_code == 204
    assert files_under(videos_root) == ["tmp/%2e%2e/x"]
