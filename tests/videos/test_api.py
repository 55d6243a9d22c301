"""The upload API: permissions, JWT, create/read, initiate-upload, upload-ended checks, schema."""

import io
import uuid

import pytest
from django.contrib.auth.models import Permission, User
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.core.management import call_command
from rest_framework.test import APIClient

from marsha_runner.videos.constants import TranscodePipeline, UploadState
from tests.api_errors import api_errors
from tests.factories import VideoFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def editor():
    user = User.objects.create_user("editor", password="editor-password-1")
    permission = Permission.objects.get(codename="change_video", content_type__app_label="videos")
    user.user_permissions.add(permission)
    return user


@pytest.fixture
def api(editor):
    client = APIClient()
    client.force_authenticate(editor)
    return client


def initiate(api, video, **overrides):
    body = {"filename": "clip.mp4", "mimetype": "video/mp4", "size": 1000, **overrides}
    return api.post(f"/api/videos/{video.id}/initiate-upload/", body, format="json")


# --- Permissions ------------------------------------------------------------------------------


def endpoints(video_id):
    return [
        ("post", "/api/videos/", {"title": "t"}),
        ("get", f"/api/videos/{video_id}/", None),
        (
            "post",
            f"/api/videos/{video_id}/initiate-upload/",
            {"filename": "a.mp4", "mimetype": "video/mp4", "size": 1},
        ),
        ("post", f"/api/videos/{video_id}/upload-ended/", {"file_key": "x"}),
    ]


def test_anonymous_gets_401_everywhere():
    video = VideoFactory()
    client = APIClient()
    for method, url, body in endpoints(video.id):
        response = getattr(client, method)(url, body, format="json")
        assert response.status_code == 401, url
    video.refresh_from_db()
    assert video.processing_stamp is None


def test_user_without_the_permission_gets_403_everywhere():
    video = VideoFactory()
    client = APIClient()
    client.force_authenticate(User.objects.create_user("reader", password="reader-password-1"))
    for method, url, body in endpoints(video.id):
        response = getattr(client, method)(url, body, format="json")
        assert response.status_code == 403, url
    video.refresh_from_db()
    assert video.processing_stamp is None


def test_jwt_obtained_at_api_token_opens_the_api(editor):
    client = APIClient()
    token = client.post(
        "/api/token/",
        {"username": "editor", "password": "editor-password-1"},
        format="json",
    )
    assert token.status_code == 200
    assert {"access", "refresh"} <= set(token.json())
    refreshed = client.post("/api/token/refresh/", {"refresh": token.json()["refresh"]})
    assert refreshed.status_code == 200

    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token.json()['access']}")
    response = client.post("/api/videos/", {"title": "Hello"}, format="json")
    assert response.status_code == 201

    client.credentials(HTTP_AUTHORIZATION="Bearer not-a-jwt")
    assert client.post("/api/videos/", {"title": "Hello"}, format="json").status_code == 401


def test_wrong_password_gets_no_token(editor):
    response = APIClient().post(
        "/api/token/", {"username": "editor", "password": "nope"}, format="json"
    )
    assert response.status_code == 401


# --- Create and read --------------------------------------------------------------------------


def test_create_then_read(api):
    response = api.post("/api/videos/", {"title": "My video"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["title"] == "My video"
    assert body["upload_state"] == UploadState.PENDING
    assert body["urls"] is None

    read = api.get(f"/api/videos/{body['id']}/")
    assert read.status_code == 200
    assert read.json()["id"] == body["id"]
    assert "urls" in read.json()


def test_create_needs_a_title(api):
    assert api.post("/api/videos/", {}, format="json").status_code == 400
    assert api.post("/api/videos/", {"title": ""}, format="json").status_code == 400


def test_unknown_video_is_404(api):
    missing = uuid.uuid4()
    assert api.get(f"/api/videos/{missing}/").status_code == 404
    assert initiate(api, type("V", (), {"id": missing})).status_code == 404
    response = api.post(f"/api/videos/{missing}/upload-ended/", {"file_key": "x"}, format="json")
    assert response.status_code == 404
    assert api.get("/api/videos/not-a-uuid/").status_code == 404


# --- initiate-upload --------------------------------------------------------------------------


def test_initiate_upload_answers_the_backend_fields_and_sets_pending(api):
    video = VideoFactory(upload_state=UploadState.ERROR, upload_error_reason="old")
    response = initiate(api, video)
    assert response.status_code == 200
    body = response.json()
    video.refresh_from_db()
    assert video.upload_state == UploadState.PENDING
    assert video.upload_error_reason == ""
    assert body["fields"]["key"] == f"tmp/{video.id}/video/{video.processing_stamp}"
    assert body["url"].startswith("https://")  # the dummy backend of the test env


def test_filesystem_backend_url_is_made_absolute(api, videos_root):
    video = VideoFactory()
    body = initiate(api, video).json()
    assert body["url"] == "http://testserver/api/storage/upload/"
    video.refresh_from_db()
    assert body["fields"]["key"] == video.source_key(video.processing_stamp)
    assert body["fields"]["policy"]


def test_stamps_are_unique_per_video_even_within_one_second(api):
    video = VideoFactory()
    keys = {initiate(api, video).json()["fields"]["key"] for _ in range(3)}
    assert len(keys) == 3


@pytest.mark.parametrize(
    "overrides, fragment",
    [
        ({"mimetype": "text/plain"}, "video"),
        ({"mimetype": "audio/mp4"}, "video"),
        ({"size": 0}, "size"),
        ({"size": -5}, "size"),
        ({"size": "big"}, "size"),
        ({"filename": ""}, "filename"),
    ],
)
def test_initiate_upload_refusals(api, overrides, fragment):
    video = VideoFactory()
    response = initiate(api, video, **overrides)
    assert response.status_code == 400
    assert fragment in str(response.json())
    video.refresh_from_db()
    assert video.processing_stamp is None


def test_initiate_upload_refuses_oversize(api, settings):
    settings.UPLOAD_MAX_SIZE = 1000
    video = VideoFactory()
    assert initiate(api, video, size=1000).status_code == 200
    response = initiate(api, video, size=1001)
    assert "size" in api_errors(response, 400)


def test_initiate_upload_missing_fields(api):
    video = VideoFactory()
    response = api.post(f"/api/videos/{video.id}/initiate-upload/", {}, format="json")
    assert set(api_errors(response, 400)) == {"filename", "mimetype", "size"}


def test_a_ready_video_keeps_serving_its_version_during_a_new_upload(api):
    urls = {"manifests": {"hls": "/v/master.m3u8"}, "mp4": {}, "thumbnails": {}}
    video = VideoFactory(
        upload_state=UploadState.READY,
        uploaded_on="2026-01-01T00:00:00Z",
        transcode_pipeline=TranscodePipeline.PEERTUBE,
        resolutions=[240],
        urls=urls,
    )
    assert initiate(api, video).status_code == 200
    body = api.get(f"/api/videos/{video.id}/").json()
    assert body["upload_state"] == UploadState.PENDING
    assert body["urls"] == urls
    assert body["uploaded_on"] == "2026-01-01T00:00:00Z"
    assert body["resolutions"] == [240]


def test_initiate_upload_refused_while_processing(api):
    video = VideoFactory(upload_state=UploadState.PROCESSING, processing_stamp=1767261600)
    response = initiate(api, video)
    assert response.status_code == 400
    video.refresh_from_db()
    assert video.processing_stamp == 1767261600


# --- upload-ended (the checks before any transcoding) ---------------------------------------


def upload_ended(api, video, key):
    return api.post(f"/api/videos/{video.id}/upload-ended/", {"file_key": key}, format="json")


def test_upload_ended_before_any_initiate_is_refused(api):
    video = VideoFactory()
    response = upload_ended(api, video, f"tmp/{video.id}/video/1767261600")
    assert response.status_code == 400
    video.refresh_from_db()
    assert video.upload_state == UploadState.PENDING


def test_upload_ended_refuses_a_key_it_did_not_issue(api):
    video, other = VideoFactory(), VideoFactory()
    key = initiate(api, video).json()["fields"]["key"]
    other_key = initiate(api, other).json()["fields"]["key"]
    stamp = int(key.rsplit("/", 1)[1])
    storages["videos"].save(other_key, ContentFile(b"x" * 10))
    for bad in (
        other_key,  # another video's key
        f"tmp/{video.id}/video/{stamp - 1}",  # a stamp never issued
        f"{key}/../{stamp}",
        f"tmp/{video.id}/video/../../{other.id}/video/{stamp}",
        "../" + key,
        key + "/",
        "",
    ):
        response = upload_ended(api, video, bad)
        assert response.status_code == 400, bad
    video.refresh_from_db()
    assert video.upload_state == UploadState.PENDING


def test_upload_ended_refuses_a_superseded_key(api):
    video = VideoFactory()
    first = initiate(api, video).json()["fields"]["key"]
    storages["videos"].save(first, ContentFile(b"x" * 10))
    initiate(api, video)  # a newer upload replaces the first
    assert upload_ended(api, video, first).status_code == 400


def test_upload_ended_refuses_a_missing_object(api):
    video = VideoFactory()
    key = initiate(api, video).json()["fields"]["key"]
    response = upload_ended(api, video, key)
    assert "No uploaded file" in api_errors(response, 400)["file_key"]


def test_upload_ended_refuses_an_empty_object(api):
    video = VideoFactory()
    key = initiate(api, video).json()["fields"]["key"]
    storages["videos"].save(key, io.BytesIO(b""))
    response = upload_ended(api, video, key)
    assert "empty" in api_errors(response, 400)["file_key"]
    video.refresh_from_db()
    assert video.upload_state == UploadState.PENDING


def test_upload_ended_missing_field(api):
    video = VideoFactory()
    response = api.post(f"/api/videos/{video.id}/upload-ended/", {}, format="json")
    assert "file_key" in api_errors(response, 400)


# --- OpenAPI ----------------------------------------------------------------------------------


def test_openapi_schema_of_the_upload_api_has_no_warnings(tmp_path):
    out = tmp_path / "schema.yml"
    call_command(
        "spectacular",
        "--validate",
        "--fail-on-warn",
        "--urlconf",
        "tests.videos.schema_urls",
        "--file",
        str(out),
    )
    schema = out.read_text()
    for route in (
        "/api/videos/",
        "/api/videos/{video_id}/initiate-upload/",
        "/api/videos/{video_id}/upload-ended/",
        "/api/token/",
    ):
        assert f"{route}:" in schema


def test_openapi_schema_of_the_project_is_valid(tmp_path):
    out = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--file", str(out))  # raises on an invalid schema
    assert "/api/videos/{video_id}/upload-ended/:" in out.read_text()


def test_schema_is_served(api):
    response = api.get("/api/schema/")
    assert response.status_code == 200
    assert b"initiate-upload" in response.content


def test_openapi_documents_the_one_error_shape_on_every_video_operation(tmp_path):
    import yaml

    out = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    schema = yaml.safe_load(out.read_text())
    error = schema["components"]["schemas"]["Error"]
    assert set(error["properties"]) == {"field", "message", "code"}
    assert schema["components"]["schemas"]["Errors"]["properties"]["errors"]["items"] == {
        "$ref": "#/components/schemas/Error"
    }
    operations = [
        (path, method, operation)
        for path, item in schema["paths"].items()
        if path.startswith("/api/videos/")
        for method, operation in item.items()
    ]
    assert len(operations) == 5  # list, create, detail, initiate-upload, upload-ended
    for path, method, operation in operations:
        errors = {code for code in operation["responses"] if code.startswith("4")}
        assert {"401", "403", "405"} <= errors, (path, method)
        for code in errors:
            content = operation["responses"][code]["content"]["application/json"]
            assert content["schema"] == {"$ref": "#/components/schemas/Errors"}, (path, code)
