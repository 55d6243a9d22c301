"""Video storage and presigned POST against a real S3 server (SeaweedFS, SigV4 enforced).

SeaweedFS checks the POST policy the way S3 does, so these tests prove that what
``marsha_runner.storage.s3.Backend`` hands a client is accepted when it should be and refused
when the upload breaks one of its conditions (moto would accept everything).
"""

import base64
import json
import time
import uuid

import boto3
import pytest
import requests
from botocore.exceptions import ClientError
from django.core.files.base import ContentFile
from django.core.files.storage import storages

from marsha_runner.storage import UploadRefused, get_upload_backend, storage_serves
from marsha_runner.storage.base import UploadPolicy
from marsha_runner.storage.s3 import Backend

pytestmark = pytest.mark.s3

SIZE = 1000


def new_key():
    return f"tmp/{uuid.uuid4()}/video/{int(time.time())}"


def object_exists(s3, key):
    try:
        s3["client"].head_object(Bucket=s3["bucket_name"], Key=key)
    except ClientError as err:
        assert err.response["Error"]["Code"] in ("404", "NoSuchKey"), err.response
        return False
    return True


def initiate(key, *, size=SIZE, expires_in=60, content_type="video/mp4"):
    return Backend().initiate_upload(
        UploadPolicy(key=key, content_type=content_type, size=size, expires_in=expires_in)
    )


def post(presigned, data, *, file_type="video/mp4", **overrides):
    fields = {**presigned["fields"], **overrides}
    return requests.post(
        presigned["url"], data=fields, files={"file": ("clip.mp4", data, file_type)}, timeout=30
    )


def test_storage_save_exists_url_open(s3_videos):
    storage = storages["videos"]
    key = f"vod/{uuid.uuid4()}/video/1/thumbnail.jpg"
    assert not storage.exists(key)

    saved = storage.save(key, ContentFile(b"\xff\xd8 a jpeg, roughly"))

    assert saved == key
    assert storage.exists(key)
    assert object_exists(s3_videos, key)
    with storage.open(key) as handle:
        assert handle.read() == b"\xff\xd8 a jpeg, roughly"
    url = storage.url(key)
    assert url.startswith(s3_videos["endpoint_url"])
    response = requests.get(url, timeout=10)
    assert response.status_code == 200
    assert response.content == b"\xff\xd8 a jpeg, roughly"


def test_server_enforces_signatures(s3_videos):
    """The server must check SigV4, else every refusal below would prove nothing."""
    storage = storages["videos"]
    key = f"vod/{uuid.uuid4()}/secret.bin"
    storage.save(key, ContentFile(b"private"))
    url = storage.url(key)

    assert requests.get(url.split("?")[0], timeout=10).status_code == 403  # unsigned
    tampered = url.replace("X-Amz-Signature=", "X-Amz-Signature=0")
    assert requests.get(tampered, timeout=10).status_code == 403
    wrong = boto3.client(
        "s3",
        endpoint_url=s3_videos["endpoint_url"],
        aws_access_key_id=s3_videos["access_key"],
        aws_secret_access_key="not-the-secret",
        region_name="us-east-1",
    )
    with pytest.raises(ClientError, match="SignatureDoesNotMatch") as excinfo:
        wrong.get_object(Bucket=s3_videos["bucket_name"], Key=key)
    assert excinfo.value.response["Error"]["Code"] == "SignatureDoesNotMatch"


def test_upload_backend_is_s3(s3_videos):
    assert isinstance(get_upload_backend(), Backend)


def test_presigned_post_accepted(s3_videos):
    key = new_key()
    presigned = initiate(key)
    assert presigned["url"].startswith(s3_videos["endpoint_url"])
    assert presigned["fields"]["key"] == key

    response = post(presigned, b"v" * SIZE)

    assert response.status_code == 204, response.text
    head = s3_videos["client"].head_object(Bucket=s3_videos["bucket_name"], Key=key)
    assert head["ContentLength"] == SIZE
    assert head["ContentType"] == "video/mp4"


def test_presigned_post_refuses_oversize(s3_videos):
    key = new_key()

    response = post(initiate(key), b"v" * (SIZE + 1))

    assert response.status_code == 400, response.text
    assert "EntityTooLarge" in response.text
    assert not object_exists(s3_videos, key)


def test_presigned_post_refuses_less_than_declared(s3_videos):
    key = new_key()

    response = post(initiate(key), b"v" * (SIZE - 1))

    assert response.status_code == 400, response.text
    assert "EntityTooSmall" in response.text
    assert not object_exists(s3_videos, key)


def test_presigned_post_refuses_another_video_type_than_declared(s3_videos):
    key = new_key()

    response = post(initiate(key), b"v" * SIZE, **{"Content-Type": "video/webm"})

    assert response.status_code == 403, response.text
    assert "Policy Condition failed" in response.text
    assert not object_exists(s3_videos, key)


def test_presigned_post_stores_the_declared_type_whatever_the_file_part_says(s3_videos):
    """S3 (and SeaweedFS) ignore the file part's own type: the object gets the declared type
    from the bound Content-Type field, and the launch's ffprobe judges the content."""
    key = new_key()

    response = post(initiate(key), b"v" * SIZE, file_type="text/plain")

    assert response.status_code == 204, response.text
    head = s3_videos["client"].head_object(Bucket=s3_videos["bucket_name"], Key=key)
    assert head["ContentType"] == "video/mp4"


def test_presigned_post_refuses_wrong_content_type(s3_videos):
    key = new_key()

    response = post(initiate(key), b"not a video", **{"Content-Type": "text/plain"})

    assert response.status_code == 403, response.text
    assert "Policy Condition failed" in response.text
    assert not object_exists(s3_videos, key)


def test_presigned_post_refuses_another_key(s3_videos):
    key, other = new_key(), new_key()

    response = post(initiate(key), b"v" * 10, key=other)

    assert response.status_code == 403, response.text
    assert not object_exists(s3_videos, other)
    assert not object_exists(s3_videos, key)


def test_presigned_post_refuses_expired_policy(s3_videos):
    key = new_key()
    presigned = initiate(key, expires_in=1)
    time.sleep(2.1)

    response = post(presigned, b"v" * 10)

    assert response.status_code == 403, response.text
    assert "Policy expired" in response.text
    assert not object_exists(s3_videos, key)


def test_presigned_post_refuses_tampered_policy(s3_videos):
    """Raising the size cap in the policy document breaks its signature."""
    key = new_key()
    presigned = initiate(key)
    policy = json.loads(base64.b64decode(presigned["fields"]["policy"]))
    policy["conditions"] = [
        c
        for c in policy["conditions"]
        if not (isinstance(c, list) and c[0] == "content-length-range")
    ] + [["content-length-range", 0, 10 * SIZE]]
    forged = base64.b64encode(json.dumps(policy).encode()).decode()

    response = post(presigned, b"v" * (2 * SIZE), policy=forged)

    assert response.status_code == 403, response.text
    assert "SignatureDoesNotMatch" in response.text
    assert not object_exists(s3_videos, key)


@pytest.mark.parametrize(
    ("key", "content_type", "refusal"),
    [
        ("tmp/x/video/1", "text/plain", r"^Content type must be video/\*, not 'text/plain'\.$"),
        ("../escape", "video/mp4", r"^Invalid storage key\.$"),
        ("/abs/key", "video/mp4", r"^Invalid storage key\.$"),
    ],
)
def test_initiate_refuses_bad_policy(s3_videos, key, content_type, refusal):
    with pytest.raises(UploadRefused, match=refusal):
        initiate(key, content_type=content_type)


def test_storage_serves_reads_the_first_byte(s3_videos):
    """A GET of one byte (what a runner's download needs), not a HEAD: missing is False,
    an empty object is served all the same."""
    storage = storages["videos"]
    key = new_key()
    assert storage_serves(storage, key) is False
    storage.save(key, ContentFile(b"source bytes"))
    assert storage_serves(storage, key) is True
    empty = new_key()
    storage.save(empty, ContentFile(b""))
    assert storage_serves(storage, empty) is True
