"""seed_runner: idempotent seeding, rotation that revokes the old token, script-readable output."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django_peertube_runner_connector.models import Runner, RunnerRegistrationToken

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _dev_machine(settings):
    """pytest-django runs with DEBUG off; the dev tokens are only accepted with DEBUG on."""
    settings.DEBUG = True


def run_seed(*args):
    """Run the command; return its stdout parsed as KEY=value lines, and its stderr."""
    out, err = io.StringIO(), io.StringIO()
    call_command("seed_runner", *args, stdout=out, stderr=err)
    lines = [line for line in out.getvalue().splitlines() if line]
    values = {}
    for line in lines:
        key, sep, value = line.partition("=")
        assert sep and key.isupper() and value, f"not a KEY=value line: {line!r}"
        assert key not in values, f"{key} printed twice"
        values[key] = value
    return values, err.getvalue()


def snapshot():
    return (
        sorted(
            RunnerRegistrationToken.objects.values_list("id", "registrationToken", "updatedAt")
        ),
        sorted(Runner.objects.values_list("id", "name", "runnerToken", "updatedAt")),
    )


def register(client, registration_token, name):
    return client.post(
        "/api/v1/runners/register",
        {"registrationToken": registration_token, "name": name},
        content_type="application/json",
    )


def test_seed_creates_the_env_runner_and_prints_key_values(settings):
    values, err = run_seed()
    assert values == {
        "REGISTRATION_TOKEN": settings.PEERTUBE_RUNNER_REGISTRATION_TOKEN,
        "RUNNER_NAME": settings.PEERTUBE_RUNNER_NAME,
        "RUNNER_TOKEN": settings.PEERTUBE_RUNNER_TOKEN,
    }
    runner = Runner.objects.get(name=settings.PEERTUBE_RUNNER_NAME)
    assert runner.runnerToken == settings.PEERTUBE_RUNNER_TOKEN
    assert runner.runnerRegistrationToken.registrationToken == values["REGISTRATION_TOKEN"]
    # People's messages go to stderr, without any token.
    assert "created" in err
    assert settings.PEERTUBE_RUNNER_TOKEN not in err
    assert settings.PEERTUBE_RUNNER_REGISTRATION_TOKEN not in err


def test_seed_twice_changes_nothing_the_second_time():
    first, _ = run_seed()
    before = snapshot()
    second, err = run_seed()
    assert second == first
    assert snapshot() == before  # same rows, same updatedAt
    assert len(before[0]) == 1 and len(before[1]) == 1
    assert "nothing to change" in err


def test_seed_with_overrides():
    values, _ = run_seed(
        "--registration-token", "ptrrt-custom", "--runner-name", "r2", "--runner-token", "ptrt-r2"
    )
    assert values == {
        "REGISTRATION_TOKEN": "ptrrt-custom",
        "RUNNER_NAME": "r2",
        "RUNNER_TOKEN": "ptrt-r2",
    }
    assert Runner.objects.get(name="r2").runnerToken == "ptrt-r2"


def test_seed_sets_the_token_of_an_existing_runner_of_that_name():
    run_seed("--runner-token", "ptrt-old")
    values, _ = run_seed("--runner-token", "ptrt-new")
    assert Runner.objects.get(name=values["RUNNER_NAME"]).runnerToken == "ptrt-new"
    assert Runner.objects.count() == 1


def test_seed_refuses_a_token_of_another_runner():
    run_seed("--runner-name", "a", "--runner-token", "ptrt-shared")
    with pytest.raises(CommandError, match="Another runner"):
        run_seed("--runner-name", "b", "--runner-token", "ptrt-shared")
    assert not Runner.objects.filter(name="b").exists()


def test_dry_run_writes_nothing():
    values, err = run_seed("--dry-run")
    assert values == {}
    assert "Dry run" in err and "created the registration token" in err
    assert not RunnerRegistrationToken.objects.exists()
    assert not Runner.objects.exists()

    run_seed()
    before = snapshot()
    values, err = run_seed("--dry-run", "--rotate", "--runner-name", "dev-runner")
    assert values == {}
    assert snapshot() == before


def test_rotate_changes_tokens_and_the_old_registration_token_stops_registering(client):
    old, _ = run_seed()
    assert register(client, old["REGISTRATION_TOKEN"], "before-rotation").status_code == 200

    new, err = run_seed("--rotate", "--runner-name", old["RUNNER_NAME"])
    assert set(new) == {"REGISTRATION_TOKEN", "RUNNER_NAME", "RUNNER_TOKEN"}
    assert new["RUNNER_NAME"] == old["RUNNER_NAME"]
    assert new["REGISTRATION_TOKEN"] != old["REGISTRATION_TOKEN"]
    assert new["RUNNER_TOKEN"] != old["RUNNER_TOKEN"]
    assert new["REGISTRATION_TOKEN"].startswith("ptrrt-")
    assert new["RUNNER_TOKEN"].startswith("ptrt-")
    assert "shown once" in err
    assert Runner.objects.get(name=old["RUNNER_NAME"]).runnerToken == new["RUNNER_TOKEN"]
    # One registration token left; the runner registered before keeps working (moved to it).
    assert list(RunnerRegistrationToken.objects.values_list("registrationToken", flat=True)) == [
        new["REGISTRATION_TOKEN"]
    ]
    assert Runner.objects.filter(name="before-rotation").exists()

    response = register(client, old["REGISTRATION_TOKEN"], "with-old-token")
    assert response.status_code == 404
    assert old["REGISTRATION_TOKEN"] not in response.content.decode()
    response = register(client, new["REGISTRATION_TOKEN"], "with-new-token")
    assert response.status_code == 200
    assert response.json()["runnerToken"].startswith("ptrt-")


def test_rotate_without_runner_name_rotates_only_the_registration_token():
    old, _ = run_seed()
    new, _ = run_seed("--rotate")
    assert set(new) == {"REGISTRATION_TOKEN"}
    assert new["REGISTRATION_TOKEN"] != old["REGISTRATION_TOKEN"]
    assert Runner.objects.get(name=old["RUNNER_NAME"]).runnerToken == old["RUNNER_TOKEN"]


def test_rotate_refuses_explicit_tokens():
    with pytest.raises(CommandError, match="--rotate"):
        run_seed("--rotate", "--registration-token", "ptrrt-x")


def test_debug_off_refuses_the_dev_tokens(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="dev token"):
        run_seed()
    with pytest.raises(CommandError, match="dev token"):
        run_seed("--registration-token", "ptrrt-prod", "--runner-name", "prod")
    assert not RunnerRegistrationToken.objects.exists()
    assert not Runner.objects.exists()
    # The error never quotes the token.
    with pytest.raises(CommandError, match="dev token") as error:
        run_seed()
    assert settings.PEERTUBE_RUNNER_REGISTRATION_TOKEN not in str(error.value)


def test_debug_off_accepts_explicit_tokens_and_rotate(settings):
    settings.DEBUG = False
    values, _ = run_seed(
        "--registration-token", "ptrrt-prod", "--runner-name", "prod", "--runner-token", "ptrt-p"
    )
    assert values["RUNNER_TOKEN"] == "ptrt-p"
    values, _ = run_seed("--rotate", "--runner-name", "prod")
    assert values["RUNNER_TOKEN"] not in settings.DEV_RUNNER_TOKENS
    assert Runner.objects.get(name="prod").runnerToken == values["RUNNER_TOKEN"]


def test_debug_off_command_runs_although_the_dev_token_check_fails(settings):
    """runners.E002 tells people to run seed_runner --rotate: it must not block it."""
    run_seed()  # dev tokens in the database
    settings.DEBUG = False
    values, _ = run_seed("--rotate", "--runner-name", settings.PEERTUBE_RUNNER_NAME)
    assert values["RUNNER_TOKEN"] != settings.PEERTUBE_RUNNER_TOKEN


def test_the_runner_container_reads_the_seeded_identity(settings):
    """docker-compose's runner reads the image's names; they must match what seed_runner seeds."""
    values = {}
    with open(settings.BASE_DIR / "env.d" / "peertube_runner") as env_file:
        for line in env_file:
            key, sep, value = line.strip().partition("=")
            if sep and not key.startswith("#"):
                values[key] = value
    assert (
        values["PEERTUBE_RUNNER_REGISTERED_INSTANCE_RUNNER_TOKEN"]
        == values["PEERTUBE_RUNNER_TOKEN"]
    )
    assert (
        values["PEERTUBE_RUNNER_REGISTERED_INSTANCE_RUNNER_NAME"] == values["PEERTUBE_RUNNER_NAME"]
    )
    assert values["PEERTUBE_RUNNER_TOKEN"] == settings.PEERTUBE_RUNNER_TOKEN


def test_rotate_replaces_every_registration_token_and_keeps_their_runners(client, settings):
    run_seed()
    run_seed("--registration-token", "ptrrt-second", "--runner-name", "b", "--runner-token", "t-b")
    assert RunnerRegistrationToken.objects.count() == 2

    new, _ = run_seed("--rotate")

    assert list(RunnerRegistrationToken.objects.values_list("registrationToken", flat=True)) == [
        new["REGISTRATION_TOKEN"]
    ]
    # The library cascades a deleted registration token to its runners: none was lost.
    assert sorted(Runner.objects.values_list("name", "runnerToken")) == [
        ("b", "t-b"),
        (settings.PEERTUBE_RUNNER_NAME, settings.PEERTUBE_RUNNER_TOKEN),
    ]
    assert register(client, "ptrrt-second", "late").status_code == 404
