"""Public reasons without internals (issue 15, point 7).

Before: ``upload_error_reason`` showed API users the internal S3 endpoint and key ("Could not
connect to the endpoint URL: http://127.0.0.1:18633/hprod/vod/…-720-fragmented.mp4") or a
runner's output. Now the API answers a stable code and a sentence for the uploader; staff read
the detail in the admin.
"""

import pytest
from django.conf import settings
from django_peertube_runner_connector.models import RunnerJobState

from marsha_runner.runners.handlers import HLSTranscodingJobHandler
from marsha_runner.runners.models import RunnerJob
from marsha_runner.videos.constants import UploadState
from marsha_runner.videos.reasons import ErrorCode, public_reason
from tests.factories import VideoFactory
from tests.runners.factories import job_tree
from tests.videos.conftest import api  # noqa: F401 - the fixture

pytestmark = pytest.mark.django_db
STAMP = 1700000000
INTERNAL = (
    "Could not connect to the endpoint URL: "
    f"http://127.0.0.1:18633/hprod/vod/x/video/{STAMP}/{STAMP}-720-fragmented.mp4"
)


def test_a_runner_failure_answers_a_code_and_a_sentence_staff_see_the_detail(
    api,  # noqa: F811
    django_capture_on_commit_callbacks,
):
    video = VideoFactory(
        upload_state=UploadState.PROCESSING, processing_stamp=STAMP, launched_stamp=STAMP
    )
    _transcoded, parent, _children = job_tree(directory=video.output_prefix(STAMP))
    RunnerJob.objects.filter(pk=parent.pk).update(
        state=RunnerJobState.PROCESSING, failures=settings.TRANSCODING_RUNNER_MAX_FAILURE
    )
    parent.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        HLSTranscodingJobHandler().error(parent, INTERNAL)

    video.refresh_from_db()
    assert video.upload_state == UploadState.ERROR
    assert video.upload_error_code == ErrorCode.TRANSCODING_FAILED
    assert video.upload_error_reason == public_reason(ErrorCode.TRANSCODING_FAILED)
    assert INTERNAL in video.upload_error_detail  # for staff

    answer = api.get(f"/api/videos/{video.id}/")
    assert answer.status_code == 200
    body = answer.json()
    assert body["upload_error_code"] == "transcoding_failed"
    assert body["upload_error_reason"] == (
        "The transcoding failed: upload the video again; if it fails again, contact support."
    )
    assert "127.0.0.1" not in answer.content.decode()
    assert "hprod" not in answer.content.decode()
    assert "upload_error_detail" not in body


def test_every_code_has_a_sentence_without_internals():
    for code in ErrorCode:
        sentence = public_reason(code, detail="no duration")
        assert sentence.endswith((".", "no duration")), code
        assert "http" not in sentence and "tmp/" not in sentence
    assert public_reason("source_refused", detail="The video has no duration.") == (
        "The video cannot be transcoded: The video has no duration."
    )


def test_the_schema_documents_503_and_the_error_code(tmp_path):
    import yaml
    from django.core.management import call_command

    out = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    schema = yaml.safe_load(out.read_text())
    for path, item in schema["paths"].items():
        if path.startswith("/api/videos/"):
            for method, operation in item.items():
                answer = operation["responses"]["503"]
                assert answer["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/Errors"
                }, (path, method)
    videos = [
        component["properties"]
        for component in schema["components"]["schemas"].values()
        if "upload_state" in component.get("properties", {})
    ]
    assert videos and all("upload_error_code" in video for video in videos)
    assert not any("upload_error_detail" in video for video in videos)
