"""Bad input through the real API, the filesystem upload endpoint and the eager launch.

Every case ends in a 4xx in the API's one error shape (asserted for each) or a video in
``error`` with a precise reason: never a 500 (the test client re-raises server errors), never
a file outside the storage root.
"""

import os
import uuid

import pytest
from django.contrib.auth.models import User
from django_peertube_runner_connector.models import RunnerJob
from django_peertube_runner_connector.models import Video as TranscodedVideo
from rest_framework.test import APIClient

from marsha_runner.videos import tasks
from marsha_runner.videos.constants import UploadState
from marsha_runner.videos.models import Video
from marsha_runner.videos.reasons import public_reason
from tests.api_errors import api_errors
from tests.factories import VideoFactory
from tests.videos.media import make_audio_only, make_clip, make_truncated

# Real commits: upload-ended launches on commit (eagerly), as in production.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.ffmpeg]


@pytest.fixture
def root(videos_root, tmp_path, settings):
    """The storage root, plus a check that nothing lands outside it."""
    settings.VIDEO_LAUNCH_RETRY_COUNTDOWNS = [0, 0, 0]

    def outside():
        return {
            path
            for path in tmp_path.rglob("*")
            if path.is_file() and videos_root not in path.parents and "media" not in path.parts
        }

    before = outside()
    yield videos_root
    assert outside() == before, "a file was written outside the storage root"
    assert {p.name for p in videos_root.iterdir()} <= {"tmp", "vod"}


@pytest.fixture
def media(tmp_path):
    folder = tmp_path / "media"
    folder.mkdir()
    return folder


def initiate(api, video, *, size, mimetype="video/mp4"):
    response = api.post(
        f"/api/videos/{video.id}/initiate-upload/",
        {"filename": "upload.mp4", "mimetype": mimetype, "size": size},
        format="json",
    )
    assert response.status_code == 200, response.content
    return response.json()


def post_file(api, upload, path):
    with open(path, "rb") as handle:
        return api.post(upload["url"], {**upload["fields"], "file": handle}, format="multipart")


def upload_ended(api, video, key):
    return api.post(f"/api/videos/{video.id}/upload-ended/", {"file_key": key}, format="json")


def upload_and_end(api, video, path):
    upload = initiate(api, video, size=max(path.stat().st_size, 1))
    assert post_file(api, upload, path).status_code == 204
    return upload_ended(api, video, upload["fields"]["key"])


def job_rows():
    return RunnerJob.objects.count(), TranscodedVideo.objects.count()


def assert_error_with_reason(response, video, fragment=""):
    """Errored with a public code and sentence; ``fragment`` is in the staff's detail only."""
    assert response.status_code == 200, response.content
    video.refresh_from_db()
    assert video.upload_state == UploadState.ERROR
    assert video.upload_error_reason == public_reason(video.upload_error_code)
    assert fragment in video.upload_error_detail
    body = response.json()
    assert body["upload_state"] == UploadState.ERROR
    assert (body["upload_error_code"], body["upload_error_reason"]) == (
        video.upload_error_code,
        video.upload_error_reason,
    )
    assert "upload_error_detail" not in body
    assert job_rows() == (0, 0)  # no orphan rows in the library's tables


def test_zero_byte_file_is_refused(api, root, media):
    video = VideoFactory()
    empty = media / "empty.mp4"
    empty.write_bytes(b"")
    assert "size" in api_errors(
        api.post(
            f"/api/videos/{video.id}/initiate-upload/",
            {"filename": "empty.mp4", "mimetype": "video/mp4", "size": 0},
            format="json",
        ),
        400,
    )
    upload = initiate(api, video, size=1)
    errors = api_errors(post_file(api, upload, empty), 400)
    assert errors == {"file": "The file is 0 bytes, smaller than the 1 bytes declared."}
    key = upload["fields"]["key"]
    assert "No uploaded file" in api_errors(upload_ended(api, video, key), 400)["file_key"]
    # An empty object that reached storage anyway is named as such.
    (root / key).parent.mkdir(parents=True)
    (root / key).write_bytes(b"")
    errors = api_errors(upload_ended(api, video, key), 400)
    assert errors == {"file_key": "The uploaded file is empty."}
    video.refresh_from_db()
    assert video.upload_state == UploadState.PENDING


def test_a_file_larger_than_declared_is_named_at_upload_ended(api, root, media):
    """Past the upload policy (an object written by other means), upload-ended still holds
    the upload to its declared size."""
    video = VideoFactory()
    clip = make_clip(media / "clip.mp4", height=240, seconds=1)
    declared = clip.stat().st_size - 100
    upload = initiate(api, video, size=declared)
    assert api_errors(post_file(api, upload, clip), 413)["file"].endswith(
        f"larger than the {declared} bytes declared."
    )
    key = upload["fields"]["key"]
    (root / key).parent.mkdir(parents=True)
    (root / key).write_bytes(clip.read_bytes())
    errors = api_errors(upload_ended(api, video, key), 400)
    assert errors == {
        "file_key": f"The uploaded file is {clip.stat().st_size} bytes, larger than the "
        f"{declared} bytes declared: upload it again."
    }
    video.refresh_from_db()
    assert video.upload_state == UploadState.PENDING
    assert job_rows() == (0, 0)


def test_the_file_part_must_have_the_declared_type(api, root, media):
    video = VideoFactory()
    text = media / "notes.txt"
    text.write_text("this is not a video\n" * 50)
    upload = initiate(api, video, size=text.stat().st_size)
    errors = api_errors(post_file(api, upload, text), 400)  # sent as text/plain
    assert errors == {"file": "The file part is text/plain, not the declared video/mp4."}
    assert not (root / upload["fields"]["key"]).exists()


def test_truncated_mp4_ends_in_error(api, root, media):
    video = VideoFactory()
    clip = make_clip(media / "clip.mp4", height=240, seconds=1)
    response = upload_and_end(api, video, make_truncated(clip, media / "truncated.mp4"))
    assert_error_with_reason(response, video, "unreadable container: ")


def test_text_file_named_mp4_ends_in_error(api, root, media):
    video = VideoFactory()
    text = media / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    response = upload_and_end(api, video, text)
    assert_error_with_reason(response, video)
    assert video.upload_error_code == "unreadable_container"
    assert video.upload_error_detail == (
        "unreadable container: Invalid data found when processing input"
    )


def test_audio_only_ends_in_error(api, root, media):
    video = VideoFactory()
    response = upload_and_end(api, video, make_audio_only(media / "audio.mp4"))
    assert_error_with_reason(response, video, "no video stream found")


def test_oversize(api, root, media, settings):
    settings.UPLOAD_MAX_SIZE = 2000
    video = VideoFactory()
    response = api.post(
        f"/api/videos/{video.id}/initiate-upload/",
        {"filename": "big.mp4", "mimetype": "video/mp4", "size": 2001},
        format="json",
    )
    assert api_errors(response, 400) == {"size": "The file is larger than 2000 bytes."}

    # A client that lies about the size: the upload endpoint holds it to what it declared.
    upload = initiate(api, video, size=1000)
    big = media / "big.mp4"
    big.write_bytes(b"\0" * 5000)
    assert "file" in api_errors(post_file(api, upload, big), 413)
    assert not (root / upload["fields"]["key"]).exists()
    assert "file_key" in api_errors(upload_ended(api, video, upload["fields"]["key"]), 400)


def test_a_key_of_another_video_is_refused(api, root, media):
    video, other = VideoFactory(), VideoFactory()
    clip = make_clip(media / "clip.mp4", height=240, seconds=1)
    other_upload = initiate(api, other, size=clip.stat().st_size)
    assert post_file(api, other_upload, clip).status_code == 204
    initiate(api, video, size=clip.stat().st_size)
    response = upload_ended(api, video, other_upload["fields"]["key"])
    assert api_errors(response, 400) == {
        "file_key": "This key is not the upload issued for this video."
    }
    video.refresh_from_db()
    assert video.upload_state == UploadState.PENDING
    assert job_rows() == (0, 0)


@pytest.mark.parametrize(
    "make_key",
    [
        lambda key: f"{key}/../../../../escape",
        lambda key: "../" * 8 + "etc/passwd",
        lambda key: key.replace("/video/", "/video/../../"),
        lambda key: "/" + key,
        lambda key: key + "%2F..%2F..",
    ],
)
def test_dot_dot_in_keys_is_refused(api, root, media, make_key):
    video = VideoFactory()
    clip = make_clip(media / "clip.mp4", height=240, seconds=1)
    upload = initiate(api, video, size=clip.stat().st_size)
    bad_key = make_key(upload["fields"]["key"])

    # The upload endpoint: the signed policy names one key only.
    with open(clip, "rb") as handle:
        posted = api.post(
            upload["url"], {**upload["fields"], "key": bad_key, "file": handle}, format="multipart"
        )
    assert api_errors(posted, 403) == {"policy": "This policy does not allow that key."}
    # upload-ended: only the exact issued key.
    assert "file_key" in api_errors(upload_ended(api, video, bad_key), 400)
    video.refresh_from_db()
    assert video.upload_state == UploadState.PENDING


def test_upload_ended_twice_starts_one_job_tree(api, root, media):
    video = VideoFactory()
    clip = make_clip(media / "clip.mp4", height=360, seconds=1)
    upload = initiate(api, video, size=clip.stat().st_size)
    assert post_file(api, upload, clip).status_code == 204

    first = upload_ended(api, video, upload["fields"]["key"])
    assert first.status_code == 200
    assert first.json()["upload_state"] == UploadState.PROCESSING
    rows = job_rows()
    assert rows[0] >= 1 and rows[1] == 1

    second = upload_ended(api, video, upload["fields"]["key"])
    assert second.status_code == 200
    assert second.json()["upload_state"] == UploadState.PROCESSING
    assert job_rows() == rows

    # A redelivered launch task (acks_late) creates no second tree either.
    video.refresh_from_db()
    tasks.video_launch_transcoding.apply(args=[str(video.id), video.processing_stamp])
    assert job_rows() == rows


def test_launch_with_a_vanished_source_retries_then_errors(api, root, media):
    video = VideoFactory(upload_state=UploadState.PROCESSING, processing_stamp=1767261600)
    result = tasks.video_launch_transcoding.apply(args=[str(video.id), 1767261600])
    assert result.successful()
    video.refresh_from_db()
    assert video.upload_state == UploadState.ERROR
    assert video.upload_error_code == "source_missing"
    assert video.upload_error_reason == "The uploaded file could not be found: upload it again."
    assert job_rows() == (0, 0)


def test_unknown_video_id(api, root):
    missing = uuid.uuid4()
    for path, body in (
        (f"/api/videos/{missing}/", None),
        (f"/api/videos/{missing}/upload-ended/", {"file_key": "x"}),
        (
            f"/api/videos/{missing}/initiate-upload/",
            {"filename": "a.mp4", "mimetype": "video/mp4", "size": 1},
        ),
    ):
        response = api.get(path) if body is None else api.post(path, body, format="json")
        assert api_errors(response, 404) == {None: "No such video."}, path
    assert not Video.objects.exists()


@pytest.mark.parametrize(
    "path",
    [
        "/api/videos/not-a-uuid/",
        "/api/videos/123/initiate-upload/",
        "/api/videos/../upload-ended/",
        "/api/videos/%00/",
        "/api/videos/00000000-0000-0000-0000-00000000000z/",
        "/api/videos/some/other/path/",
    ],
)
def test_a_malformed_id_or_unknown_path_is_a_json_404(api, root, path):
    for method in ("get", "post", "put", "delete"):
        response = getattr(api, method)(path, {}, format="json")
        assert api_errors(response, 404) == {None: "No such video."}, (method, path)


def test_refusals_before_the_input_are_in_the_shape(api, root):
    """401, 403, 405 and 413 too: one shape for every refused call."""
    video = VideoFactory()
    detail = f"/api/videos/{video.id}/"
    assert set(api_errors(APIClient().get(detail), 401)) == {None}
    assert set(api_errors(APIClient().get("/api/videos/not-a-uuid/"), 401)) == {None}
    reader = APIClient()
    reader.force_authenticate(User.objects.create_user("reader", password="reader-password-1"))
    assert api_errors(reader.get(detail), 403) == {
        None: "You need the permission to change videos."
    }
    for method, path in (
        ("put", detail),
        ("delete", detail),
        ("get", f"{detail}upload-ended/"),
        ("patch", "/api/videos/"),
    ):
        response = getattr(api, method)(path, {}, format="json")
        assert set(api_errors(response, 405)) == {None}, (method, path)
    huge = {"title": "x" * 100_000}
    errors = api_errors(api.post("/api/videos/", huge, format="json"), 413)
    assert errors == {None: "The request body is larger than 65536 bytes."}
    assert not Video.objects.exclude(id=video.id).exists()


REQUIRED = "This field is required."


@pytest.mark.parametrize(
    "endpoint, body, expected",
    [
        ("initiate-upload/", {"filename": "a.mp4"}, {"mimetype": REQUIRED, "size": REQUIRED}),
        ("initiate-upload/", {"mimetype": "video/mp4", "size": 1}, {"filename": REQUIRED}),
        ("upload-ended/", {}, {"file_key": REQUIRED}),
        ("upload-ended/", {"file_key": None}, {"file_key": "This field may not be null."}),
        ("upload-ended/", {"file_key": ["a", "b"]}, {"file_key": "Not a valid string."}),
        (
            "upload-ended/",
            {"file_key": "x" * 5000},
            {"file_key": "Ensure this field has no more than 1024 characters."},
        ),
    ],
)
def test_missing_or_malformed_fields(api, root, endpoint, body, expected):
    """Each field at fault is named, with its own message, and no other field is blamed."""
    video = VideoFactory()
    response = api.post(f"/api/videos/{video.id}/{endpoint}", body, format="json")
    assert api_errors(response, 400) == expected


def test_malformed_json_is_a_400(api, root):
    video = VideoFactory()
    response = api.post(
        f"/api/videos/{video.id}/upload-ended/", "{not json", content_type="application/json"
    )
    assert "JSON parse error" in api_errors(response, 400)[None]


def test_upload_endpoint_without_a_policy_writes_nothing(api, root, media):
    video = VideoFactory()
    upload = initiate(api, video, size=10)
    path = media / "x.mp4"
    path.write_bytes(b"0123456789")
    fields = {**upload["fields"], "policy": "forged"}
    with open(path, "rb") as handle:
        response = api.post(upload["url"], {**fields, "file": handle}, format="multipart")
    assert api_errors(response, 403) == {"policy": "Invalid upload policy."}
    assert not os.path.exists(root / upload["fields"]["key"])
