"""Runners (unregister), registration tokens (generate, revoke) and the health panel."""

import pytest
from django.contrib.admin.models import ADDITION, LogEntry
from django.urls import reverse
from django.utils import timezone
from django_peertube_runner_connector.models import RunnerJobState

from marsha_runner.runners.models import Runner, RunnerJob, RunnerRegistrationToken
from marsha_runner.runners.tokens import runner_seed
from marsha_runner.videos.constants import UploadState
from marsha_runner.videos.models import Video
from tests.factories import VideoFactory
from tests.runners.factories import job_tree

from .helpers import action_names, change, changelist, messages_of, post_action, staff_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def fleet():
    runner_seed(registration_token="ptrrt-fleet-a", runner_name="a1", runner_token="ptrt-a1")
    runner_seed(registration_token="ptrrt-fleet-a", runner_name="a2", runner_token="ptrt-a2")
    runner_seed(registration_token="ptrrt-fleet-b", runner_name="b1", runner_token="ptrt-b1")
    _v, parent, _c = job_tree()
    RunnerJob.objects.filter(pk=parent.pk).update(
        runner=Runner.objects.get(name="a1"), state=RunnerJobState.PROCESSING,
        processingJobToken="ptrjt-x", startedAt=timezone.now(),
    )  # fmt: skip
    tokens = {t.registrationToken: t for t in RunnerRegistrationToken.objects.all()}
    return tokens["ptrrt-fleet-a"], tokens["ptrrt-fleet-b"], parent


def names():
    return set(Runner.objects.values_list("name", flat=True))


def test_unregister_runner(client, fleet):
    _a, _b, job = fleet
    client.force_login(staff_user())
    assert "unregister" not in action_names(client, Runner)
    client.force_login(staff_user("unregister_runner", username="ops"))
    a1, b1 = Runner.objects.get(name="a1"), Runner.objects.get(name="b1")
    page = post_action(client, Runner, "unregister", [a1])
    assert "will be unregistered; its 1 processing job(s) go back to pending" in (
        page.content.decode()
    )
    assert names() == {"a1", "a2", "b1"}
    response = post_action(client, Runner, "unregister", [a1], confirmed=True)
    assert names() == {"a2", "b1"}
    assert RunnerJob.objects.get(pk=job.pk).state == RunnerJobState.PENDING
    assert any("unregistered; its 1 processing job(s)" in m for m in messages_of(response))
    assert LogEntry.objects.get().object_id == str(a1.pk)
    assert b1.pk  # untouched, still there
    assert "ptrt-b1" not in client.get(changelist(Runner)).content.decode()


def test_revoke_registration_token(client, fleet):
    token_a, token_b, job = fleet
    client.force_login(staff_user("generate_runnerregistrationtoken"))
    assert "revoke" not in action_names(client, RunnerRegistrationToken)
    client.force_login(staff_user("revoke_runnerregistrationtoken", username="ops"))
    page = post_action(client, RunnerRegistrationToken, "revoke", [token_a])
    assert "will be revoked, unregistering 2 runner(s): a1, a2" in page.content.decode()
    assert names() == {"a1", "a2", "b1"}

    response = post_action(client, RunnerRegistrationToken, "revoke", [token_a], confirmed=True)
    assert names() == {"b1"}
    assert list(RunnerRegistrationToken.objects.values_list("pk", flat=True)) == [token_b.pk]
    assert RunnerJob.objects.get(pk=job.pk).state == RunnerJobState.PENDING
    assert any("revoked, 2 runner(s) unregistered: a1, a2" in m for m in messages_of(response))
    assert LogEntry.objects.get().object_id == str(token_a.pk)


def test_generate_registration_token(client, fleet):
    url = reverse("admin:runners_runnerregistrationtoken_generate")
    client.force_login(staff_user())
    assert (
        'id="generate-registration-token"'
        not in client.get(changelist(RunnerRegistrationToken)).content.decode()
    )
    assert client.post(url).status_code == 403
    assert RunnerRegistrationToken.objects.count() == 2

    client.force_login(
        staff_user(
            "generate_runnerregistrationtoken", "reveal_runnerregistrationtoken", username="ops"
        )
    )
    listing = client.get(changelist(RunnerRegistrationToken)).content.decode()
    assert 'id="generate-registration-token"' in listing
    assert "ptrrt-fleet-a" not in listing  # values only on their detail page
    assert client.get(url).status_code == 405
    response = client.post(url)
    token = RunnerRegistrationToken.objects.order_by("-createdAt").first()
    assert RunnerRegistrationToken.objects.count() == 3
    assert response.url == change(RunnerRegistrationToken, token.pk)
    detail = client.get(response.url).content.decode()
    assert token.registrationToken in detail and 'id="copy-registration-token"' in detail
    entry = LogEntry.objects.get()
    assert (entry.action_flag, entry.object_id) == (ADDITION, str(token.pk))


def test_health_panel_on_the_index(admin_client, fleet):
    VideoFactory(upload_state=UploadState.ERROR)
    VideoFactory(upload_state=UploadState.PROCESSING)
    VideoFactory(upload_state=UploadState.PROCESSING)
    response = admin_client.get(reverse("admin:index"))
    html = response.content.decode()
    assert 'id="queue-health"' in html
    jobs = changelist(RunnerJob)
    assert f'data-figure="processing jobs" href="{jobs}?state__exact=2">1<' in html
    videos = changelist(Video)
    processing = f"{videos}?upload_state__exact=processing"
    assert f'data-figure="videos processing" href="{processing}">2<' in html
    assert f'data-figure="videos in error" href="{videos}?upload_state__exact=error">1<' in html
    # Each link is a valid filtered list.
    for url in (f"{jobs}?state__exact=1&o=11", f"{changelist(Runner)}?online=yes"):
        assert admin_client.get(url).status_code == 200
