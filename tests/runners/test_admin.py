"""The admin of the library's models shows no token: not in lists, searches or detail pages
(but the registration token's own detail page, which shows it on purpose, with a copy button)."""

import pytest
from django.contrib import admin
from django.urls import get_resolver, reverse
from django_peertube_runner_connector import models as library
from django_peertube_runner_connector.factories import (
    RunnerFactory,
    RunnerJobFactory,
    RunnerRegistrationTokenFactory,
    VideoFactory,
    VideoFileFactory,
    VideoJobInfoFactory,
    VideoStreamingPlaylistFactory,
)
from django_peertube_runner_connector.models import RunnerJobState, RunnerJobType

from marsha_runner.runners.fleet_admin import RunnerAdmin
from marsha_runner.runners.models import (
    Runner,
    RunnerJob,
    RunnerRegistrationToken,
    TranscodedFile,
    TranscodedPlaylist,
    TranscodedVideo,
    TranscodingJobInfo,
)
from marsha_runner.runners.naming import mask_token, token_prefix

Video, VideoFile, VideoStreamingPlaylist, VideoJobInfo = (
    TranscodedVideo,
    TranscodedFile,
    TranscodedPlaylist,
    TranscodingJobInfo,
)

pytestmark = pytest.mark.django_db

REGISTRATION_TOKEN = "ptrrt-aaaaaaaa-1111-4111-8111-registration"
RUNNER_TOKEN = "ptrt-bbbbbbbb-2222-4222-8222-runnertoken1"
JOB_TOKEN = "ptrjt-cccccccc-3333-4333-8333-jobtoken0001"
SECRETS = (REGISTRATION_TOKEN, RUNNER_TOKEN, JOB_TOKEN)
MODELS = (
    RunnerRegistrationToken,
    Runner,
    RunnerJob,
    Video,
    VideoFile,
    VideoStreamingPlaylist,
    VideoJobInfo,
)


@pytest.fixture
def rows():
    token = RunnerRegistrationTokenFactory(registrationToken=REGISTRATION_TOKEN)
    runner = RunnerFactory(
        name="runner-one", runnerToken=RUNNER_TOKEN, runnerRegistrationToken=token
    )
    video = VideoFactory()
    job = RunnerJobFactory(
        runner=runner,
        processingJobToken=JOB_TOKEN,
        state=RunnerJobState.PROCESSING,
        type=RunnerJobType.VOD_HLS_TRANSCODING,
        payload={"input": {"videoFileUrl": "http://example.org/x"}},
        privatePayload={"videoUUID": str(video.uuid)},
        priority=50,
    )
    playlist = VideoStreamingPlaylistFactory(video=video)
    video_file = VideoFileFactory(video=video, streamingPlaylist=playlist, resolution=720)
    job_info = VideoJobInfoFactory(video=video)
    return {
        RunnerRegistrationToken: token,
        Runner: runner,
        RunnerJob: job,
        Video: video,
        VideoFile: video_file,
        VideoStreamingPlaylist: playlist,
        VideoJobInfo: job_info,
    }


def url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def assert_no_secret(html):
    for secret in SECRETS:
        assert secret not in html
        # Not even a long prefix: the first 4 characters; a registration token its kind and
        # 4 characters more, so staff tell a fleet's tokens apart (token_prefix).
        shown = len(token_prefix(secret)) - 1 if secret == REGISTRATION_TOKEN else 4
        assert secret[: shown + 1] not in html


def test_ours_replace_the_library_admins():
    assert get_resolver().url_patterns  # loaded as in a web process: every admin module too
    for model in MODELS:
        assert admin.site._registry[model].__module__ in (
            "marsha_runner.runners.admin",
            "marsha_runner.runners.fleet_admin",
        )
    assert isinstance(admin.site._registry[Runner], RunnerAdmin)
    for name in dir(library):
        model = getattr(library, name)
        if isinstance(model, type) and issubclass(model, library.models.Model):
            assert not admin.site.is_registered(model), name


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_changelist_and_detail_show_no_token(admin_client, rows, model):
    response = admin_client.get(url(model, "changelist"))
    assert response.status_code == 200
    assert response.context["cl"].result_count == 1  # the row is listed, its token is not
    assert_no_secret(response.content.decode())

    response = admin_client.get(url(model, "change", rows[model].pk))
    assert response.status_code == 200
    html = response.content.decode()
    if model is RunnerRegistrationToken:
        # Its own page is the one place the value is shown, with a copy button.
        assert REGISTRATION_TOKEN in html and 'id="copy-registration-token"' in html
        html = html.replace(REGISTRATION_TOKEN, "")
    assert_no_secret(html)


def test_masked_tokens_are_shown_on_detail_pages(admin_client, rows):
    html = admin_client.get(url(RunnerJob, "change", rows[RunnerJob].pk)).content.decode()
    assert "ptrj…" in html
    assert "runner-one" in html


def test_search_does_not_match_tokens(admin_client, rows):
    for model, token in (
        (Runner, RUNNER_TOKEN),
        (Runner, REGISTRATION_TOKEN),
        (RunnerJob, JOB_TOKEN),
    ):
        response = admin_client.get(url(model, "changelist"), {"q": token})
        assert response.status_code == 200
        assert response.context["cl"].result_count == 0
    # Registration tokens have nothing else to search by: no search at all (the requests
    # above loaded the URLconf, hence every admin module).
    assert not admin.site._registry[RunnerRegistrationToken].search_fields
    # Searching by name still works.
    response = admin_client.get(url(Runner, "changelist"), {"q": "runner-one"})
    assert response.context["cl"].result_count == 1


def test_jobs_filter_by_state_and_type(admin_client, rows):
    RunnerJobFactory(runner=rows[Runner], state=RunnerJobState.PENDING, processingJobToken=None)
    changelist = url(RunnerJob, "changelist")
    response = admin_client.get(changelist, {"state__exact": RunnerJobState.PROCESSING})
    assert [job.pk for job in response.context["cl"].result_list] == [rows[RunnerJob].pk]
    response = admin_client.get(changelist, {"type__exact": RunnerJobType.VOD_HLS_TRANSCODING})
    assert rows[RunnerJob].pk in [job.pk for job in response.context["cl"].result_list]


def test_rows_are_read_only(admin_client, rows):
    assert admin_client.get(url(Runner, "add")).status_code == 403
    assert admin_client.get(url(RunnerRegistrationToken, "add")).status_code == 403
    response = admin_client.post(
        url(Runner, "change", rows[Runner].pk), {"name": "renamed", "runnerToken": "x"}
    )
    assert response.status_code == 403
    rows[Runner].refresh_from_db()
    assert (rows[Runner].name, rows[Runner].runnerToken) == ("runner-one", RUNNER_TOKEN)


def test_mask_token():
    assert mask_token(REGISTRATION_TOKEN) == "ptrr…"
    assert token_prefix(REGISTRATION_TOKEN) == "ptrrt-aaaa…"
    assert token_prefix(None) == "-"
    assert mask_token(None) == "-"
    assert mask_token("") == "-"
