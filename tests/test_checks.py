"""Each system check fires on its broken setting, and the default configuration is clean.

That the dev-token check survives a missing database is tested in test_settings.py, where
`manage.py check --deploy` runs against a PostgreSQL URL nobody answers.
"""

import os
import shutil

import pytest
from django.core import checks
from django.utils import timezone
from django_peertube_runner_connector.models import Runner, RunnerRegistrationToken

from marsha_runner.runners.checks import REQUIRED_SETTINGS

# pytest-django runs with DEBUG off, so the dev-token check queries the database.
pytestmark = pytest.mark.django_db


class Backend:
    """Not an UploadBackend: STORAGE_BACKEND="tests.test_checks" must be refused."""


def error_ids(**kwargs):
    return sorted(m.id for m in checks.run_checks(**kwargs) if m.level >= checks.ERROR)


@pytest.mark.ffmpeg
def test_default_config_is_clean():
    assert [m for m in checks.run_checks() if m.level >= checks.WARNING] == []


@pytest.mark.parametrize(
    "backend",
    ["marsha_runner.storage.nope", "marsha_runner.storage.base", "", "tests.test_checks"],
)
def test_unknown_storage_backend(settings, backend):
    settings.STORAGE_BACKEND = backend

    assert "marsha_runner.storage.E001" in error_ids()


@pytest.mark.parametrize(
    "backend",
    [
        "marsha_runner.storage.s3",
        "marsha_runner.storage.filesystem",
        "marsha_runner.storage.dummy",
    ],
)
def test_known_storage_backends(settings, backend):
    settings.STORAGE_BACKEND = backend

    assert "marsha_runner.storage.E001" not in error_ids()


def test_missing_videos_storage(settings):
    settings.STORAGES = {k: v for k, v in settings.STORAGES.items() if k != "videos"}

    assert "marsha_runner.storage.E002" in error_ids()


def test_ffmpeg_and_ffprobe_not_on_path(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))

    errors = [m for m in checks.run_checks() if m.id == "marsha_runner.storage.E003"]

    assert len(errors) == 2
    assert {m.msg.split()[0] for m in errors} == {"ffmpeg", "ffprobe"}


@pytest.mark.ffmpeg
def test_only_ffprobe_missing(monkeypatch, tmp_path):
    os.symlink(shutil.which("ffmpeg"), tmp_path / "ffmpeg")
    monkeypatch.setenv("PATH", str(tmp_path))

    errors = [m for m in checks.run_checks() if m.id == "marsha_runner.storage.E003"]

    assert [m.msg.split()[0] for m in errors] == ["ffprobe"]


@pytest.mark.parametrize("name", REQUIRED_SETTINGS)
def test_missing_transcoding_setting(settings, name):
    delattr(settings, name)

    errors = [m for m in checks.run_checks() if m.id == "marsha_runner.runners.E001"]

    assert len(errors) == 1
    assert name in errors[0].msg


def test_every_transcoding_setting_the_library_reads_is_checked():
    """A TRANSCODING_* setting the library reads but the check forgets would fail late."""
    import pathlib
    import re

    import django_peertube_runner_connector

    source = pathlib.Path(django_peertube_runner_connector.__file__).parent
    read = set()
    for path in source.rglob("*.py"):
        read |= set(
            re.findall(r"settings\.(TRANSC(?:ODING|RIPTION)_[A-Z0-9_]+)", path.read_text())
        )
    assert read, "the library no longer reads TRANSCODING_* settings this way"
    assert read <= set(REQUIRED_SETTINGS)


def make_registration_token(token):
    return RunnerRegistrationToken.objects.create(registrationToken=token)


def make_runner(token, registration):
    return Runner.objects.create(
        name="dev-runner",
        runnerToken=token,
        lastContact=timezone.now(),
        ip="127.0.0.1",
        runnerRegistrationToken=registration,
    )


def test_dev_registration_token_with_debug_off(settings):
    settings.DEBUG = False
    registration_token, _runner_token = settings.DEV_RUNNER_TOKENS
    assert registration_token
    assert "marsha_runner.runners.E002" not in error_ids()

    make_registration_token(registration_token)

    assert "marsha_runner.runners.E002" in error_ids()
    # Reported once, also under --deploy (it used to be registered twice).
    assert error_ids(include_deployment_checks=True).count("marsha_runner.runners.E002") == 1


def test_dev_runner_token_with_debug_off(settings):
    settings.DEBUG = False
    _registration_token, runner_token = settings.DEV_RUNNER_TOKENS
    assert runner_token
    make_runner(runner_token, make_registration_token("a-fresh-random-registration-token"))

    assert "marsha_runner.runners.E002" in error_ids()


def test_dev_tokens_allowed_with_debug_on(settings):
    settings.DEBUG = True
    registration_token, runner_token = settings.DEV_RUNNER_TOKENS
    make_runner(runner_token, make_registration_token(registration_token))

    assert "marsha_runner.runners.E002" not in error_ids()


def test_other_tokens_with_debug_off(settings):
    settings.DEBUG = False
    make_runner("a-rotated-runner-token", make_registration_token("a-rotated-registration"))

    assert "marsha_runner.runners.E002" not in error_ids()
