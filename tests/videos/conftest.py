"""Fixtures of the videos tests: an editor's API client, the seeded dev runner, a JWT session."""

import pytest
import requests
from django.contrib.auth.models import Permission, User
from rest_framework.test import APIClient

from marsha_runner.runners.tokens import runner_seed


@pytest.fixture
def seeded_runner_token(settings):
    settings.DEBUG = True  # the dev tokens of env.d/peertube_runner, as `make run` seeds them
    return runner_seed(
        registration_token=settings.PEERTUBE_RUNNER_REGISTRATION_TOKEN,
        runner_name=settings.PEERTUBE_RUNNER_NAME,
        runner_token=settings.PEERTUBE_RUNNER_TOKEN,
    ).runner_token


@pytest.fixture
def jwt_session():
    """A requests session carrying the JWT of a user allowed to change videos."""

    def make(base_url):
        user = User.objects.create_user("uploader", password="uploader-password-1")
        user.user_permissions.add(
            Permission.objects.get(codename="change_video", content_type__app_label="videos")
        )
        token = requests.post(
            f"{base_url}/api/token/",
            json={"username": "uploader", "password": "uploader-password-1"},
            timeout=30,
        )
        assert token.status_code == 200, token.text
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token.json()['access']}"
        return session

    return make


@pytest.fixture
def api():
    """An API client authenticated as a user allowed to change videos."""
    user = User.objects.create_user("editor", password="editor-password-1")
    user.user_permissions.add(
        Permission.objects.get(codename="change_video", content_type__app_label="videos")
    )
    client = APIClient()
    client.force_authenticate(user)
    return client
