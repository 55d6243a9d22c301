"""Export videos, runner jobs and runners in CSV, JSON and XLSX; import videos from CSV with
a dry-run preview that changes nothing, refusing rows that touch what only services change."""

import csv
import io
import json

import openpyxl
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django_peertube_runner_connector.models import RunnerJobState

from marsha_runner.runners.models import Runner, RunnerJob
from marsha_runner.runners.tokens import runner_seed
from marsha_runner.videos.constants import TranscodePipeline, UploadState
from marsha_runner.videos.models import Video
from tests.factories import VideoFactory
from tests.runners.factories import job_tree

pytestmark = pytest.mark.django_db

FORMATS = {"csv": 0, "json": 1, "xlsx": 2}
RUNNER_TOKEN = "ptrt-export-secret-0001"


@pytest.fixture
def rows():
    video = VideoFactory(
        title="Exported", upload_state=UploadState.READY,
        transcode_pipeline=TranscodePipeline.PEERTUBE, resolutions=[240, 720],
        urls={"manifests": {"hls": "http://x/master.m3u8"}}, size=1234, duration=3.5,
    )  # fmt: skip
    runner_seed(registration_token="ptrrt-x", runner_name="exporter", runner_token=RUNNER_TOKEN)
    _tv, parent, _children = job_tree(directory=f"vod/{video.id}/video/1")
    RunnerJob.objects.filter(pk=parent.pk).update(
        runner=Runner.objects.get(name="exporter"), state=RunnerJobState.PROCESSING,
        processingJobToken="ptrjt-export-secret",
    )  # fmt: skip
    return {Video: video, RunnerJob: parent, Runner: Runner.objects.get(name="exporter")}


def export(client, model, fmt):
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_export")
    resource = client.get(url).context["form"].resources[0]
    fields = {
        f"{resource.__name__.lower()}_{name}": "on" for name in resource().get_export_order()
    }
    response = client.post(url, {"format": FORMATS[fmt], "resource": 0, **fields})
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Disposition"].endswith(f'.{fmt}"')
    return response.content


def parse(content, fmt):
    if fmt == "csv":
        return list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"))))
    if fmt == "json":
        return json.loads(content)
    sheet = openpyxl.load_workbook(io.BytesIO(content)).active
    header, *values = [list(r) for r in sheet.iter_rows(values_only=True)]
    return [dict(zip(header, v, strict=True)) for v in values]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("model", [Video, RunnerJob, Runner], ids=lambda m: m.__name__)
def test_export(admin_client, rows, model, fmt):
    content = export(admin_client, model, fmt)
    assert b"ptrt-export" not in content and b"ptrjt-export" not in content  # no token
    exported = parse(content, fmt)
    assert len(exported) == model.objects.count()
    if model is Video:
        row = exported[0]
        assert row["title"] == "Exported" and row["upload_state"] == "ready"
    elif model is RunnerJob:
        mine = [r for r in exported if str(r["uuid"]) == str(rows[RunnerJob].uuid)]
        assert mine[0]["runner"] == "exporter" and mine[0]["state"] == "Processing"
    else:
        assert exported[0]["name"] == "exporter"


def test_export_needs_the_view_permission(client, rows):
    client.force_login(_no_view_user())
    url = reverse("admin:videos_video_export")
    assert client.get(url).status_code == 403


def _no_view_user():
    from django.contrib.auth.models import User

    return User.objects.create_user(username="noview", password="pw", is_staff=True)


def import_csv(client, rows_to_import):
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows_to_import[0]))
    writer.writeheader()
    writer.writerows(rows_to_import)
    upload = SimpleUploadedFile("videos.csv", buffer.getvalue().encode(), "text/csv")
    url = reverse("admin:videos_video_import")
    return client.post(url, {"format": 0, "resource": 0, "import_file": upload})


def test_import_dry_run_shows_the_diff_and_changes_nothing(admin_client, rows):
    video = rows[Video]
    exported = parse(export(admin_client, Video, "csv"), "csv")
    before = Video.objects.filter(pk=video.pk).values().get()
    exported[0]["title"] = "Renamed by import"
    response = import_csv(admin_client, exported)
    assert response.status_code == 200
    result = response.context["result"]
    assert not result.has_errors() and not result.has_validation_errors()
    assert [r.import_type for r in result.rows] == ["update"]
    html = response.content.decode()
    assert "<ins" in html and "Renamed by im" in html  # the diff, character by character
    assert Video.objects.filter(pk=video.pk).values().get() == before  # a dry run

    # Confirming applies the title only.
    confirm = response.context["confirm_form"]
    response = admin_client.post(
        reverse("admin:videos_video_process_import"), confirm.initial, follow=True
    )
    video.refresh_from_db()
    assert video.title == "Renamed by import"
    assert video.upload_state == UploadState.READY


def test_import_refuses_a_row_setting_upload_state(admin_client, rows):
    video = rows[Video]
    exported = parse(export(admin_client, Video, "csv"), "csv")
    before = Video.objects.filter(pk=video.pk).values().get()
    exported[0]["upload_state"] = "error"
    exported[0]["title"] = "also renamed"
    response = import_csv(admin_client, exported)
    result = response.context["result"]
    assert result.has_validation_errors()
    errors = result.invalid_rows[0].error_dict
    assert "upload_state" in errors and "services" in str(errors["upload_state"])
    assert "confirm_form" not in response.context or response.context["confirm_form"] is None
    assert Video.objects.filter(pk=video.pk).values().get() == before


def test_import_refuses_urls_and_stamps(admin_client, rows):
    exported = parse(export(admin_client, Video, "csv"), "csv")
    exported[0]["urls"] = json.dumps({"manifests": {"hls": "http://evil/x.m3u8"}})
    exported[0]["processing_stamp"] = "42"
    result = import_csv(admin_client, exported).context["result"]
    assert set(result.invalid_rows[0].error_dict) == {"urls", "processing_stamp"}


def test_import_of_an_unchanged_export_changes_nothing(admin_client, rows):
    exported = parse(export(admin_client, Video, "csv"), "csv")
    result = import_csv(admin_client, exported).context["result"]
    assert not result.has_validation_errors(), result.invalid_rows
    assert [r.import_type for r in result.rows] == ["skip"]
