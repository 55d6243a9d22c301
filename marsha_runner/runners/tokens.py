"""Runners and registration tokens: seed_runner's logic (``changes`` name what changed, never
a token value)."""

import uuid
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django_peertube_runner_connector.models import Runner, RunnerRegistrationToken


def runner_tokens_in_use(tokens) -> bool:
    """Whether any of ``tokens`` is a live registration or runner token."""
    tokens = [t for t in tokens if t]
    if not tokens:
        return False
    return (
        RunnerRegistrationToken.objects.filter(registrationToken__in=tokens).exists()
        or Runner.objects.filter(runnerToken__in=tokens).exists()
    )


REGISTRATION_TOKEN_PREFIX = "ptrrt-"


RUNNER_TOKEN_PREFIX = "ptrt-"


SEEDED_RUNNER_DESCRIPTION = "Pre-registered by seed_runner"


@dataclass(frozen=True)
class RunnerSeedResult:
    """Token values in effect after a seed or a rotation, and what was changed."""

    registration_token: str
    runner_name: str | None
    runner_token: str | None
    changes: tuple[str, ...]


def registration_token_generate() -> str:
    """A fresh registration token in the library's own format."""
    return f"{REGISTRATION_TOKEN_PREFIX}{uuid.uuid4()}"


def runner_token_generate() -> str:
    """A fresh runner token in the library's own format (as its register view makes)."""
    return f"{RUNNER_TOKEN_PREFIX}{uuid.uuid4()}"


def runner_token_validate(*, value, label: str) -> None:
    """Refuse blank or oversized tokens, and the public dev tokens when DEBUG is off."""
    if not isinstance(value, str) or not value or value != value.strip() or len(value) > 255:
        raise ValidationError(
            f"The {label} must be a non-empty string of at most 255 characters, "
            "without surrounding spaces."
        )
    dev_tokens = {t for t in getattr(settings, "DEV_RUNNER_TOKENS", []) if t}
    if not settings.DEBUG and value in dev_tokens:
        raise ValidationError(
            f"The {label} is a dev token of env.d/peertube_runner (public): refused while "
            "DEBUG is off. Give your own value or rotate to a fresh one."
        )


def _runner_create(*, name, token, registration_token):
    runner = Runner(
        name=name,
        runnerToken=token,
        description=SEEDED_RUNNER_DESCRIPTION,
        ip="0.0.0.0",  # noqa: S104  (not an address we bind: the runner has not called yet)
        lastContact=timezone.now(),
        runnerRegistrationToken=registration_token,
    )
    runner.full_clean()
    runner.save()
    return runner


def _runner_token_free(*, token, name):
    """Two runners with one token would make the library's ``get(runnerToken=…)`` raise."""
    if Runner.objects.filter(runnerToken=token).exclude(name=name).exists():
        raise ValidationError("Another runner already uses this runner token.")


def runner_seed(
    *,
    registration_token: str,
    runner_name: str | None = None,
    runner_token: str | None = None,
    dry_run: bool = False,
) -> RunnerSeedResult:
    """Make sure the registration token and the pre-registered runner exist, as given.

    Idempotent: rows already matching are left untouched (same ``updatedAt``). A runner of
    that name with another token gets the given token, so a runner configured with it works
    without calling register. ``dry_run`` does everything then rolls back.
    """
    runner_token_validate(value=registration_token, label="registration token")
    if bool(runner_name) != bool(runner_token):
        raise ValidationError("A runner needs both a name and a runner token.")
    if runner_name:
        runner_token_validate(value=runner_token, label="runner token")
        if len(runner_name) > 255 or runner_name != runner_name.strip():
            raise ValidationError("The runner name must be at most 255 characters, trimmed.")

    changes = []
    with transaction.atomic():
        token_row = RunnerRegistrationToken.objects.filter(
            registrationToken=registration_token
        ).first()
        if token_row is None:
            token_row = RunnerRegistrationToken(registrationToken=registration_token)
            token_row.full_clean()
            token_row.save()
            changes.append("created the registration token")
        if runner_name:
            _runner_token_free(token=runner_token, name=runner_name)
            runner = Runner.objects.select_for_update().filter(name=runner_name).first()
            if runner is None:
                _runner_create(name=runner_name, token=runner_token, registration_token=token_row)
                changes.append(f"created the runner {runner_name!r}")
            elif runner.runnerToken != runner_token:
                runner.runnerToken = runner_token
                runner.save(update_fields=["runnerToken", "updatedAt"])
                changes.append(f"set the token of the runner {runner_name!r}")
        if dry_run:
            transaction.set_rollback(True)
    return RunnerSeedResult(
        registration_token=registration_token,
        runner_name=runner_name or None,
        runner_token=runner_token or None,
        changes=tuple(changes),
    )


def registration_token_rotate() -> RunnerRegistrationToken:
    """Replace every registration token by one fresh token, so no old one registers again.

    Runners registered with the old tokens are moved to the kept row: a registration token
    deleted by the library's cascade would delete its runners too.
    """
    with transaction.atomic():
        rows = list(
            RunnerRegistrationToken.objects.select_for_update().order_by("createdAt", "id")
        )
        if not rows:
            kept = RunnerRegistrationToken(registrationToken=registration_token_generate())
        else:
            kept, *others = rows
            other_ids = [row.pk for row in others]
            Runner.objects.filter(runnerRegistrationToken_id__in=other_ids).update(
                runnerRegistrationToken=kept
            )
            RunnerRegistrationToken.objects.filter(pk__in=other_ids).delete()
            kept.registrationToken = registration_token_generate()
        kept.full_clean()
        kept.save()
    return kept


def runner_token_rotate(
    *, runner_name: str, registration_token: RunnerRegistrationToken
) -> Runner:
    """Give the runner ``runner_name`` a fresh token (created pre-registered when missing)."""
    with transaction.atomic():
        runner = Runner.objects.select_for_update().filter(name=runner_name).first()
        if runner is None:
            return _runner_create(
                name=runner_name,
                token=runner_token_generate(),
                registration_token=registration_token,
            )
        runner.runnerToken = runner_token_generate()
        runner.save(update_fields=["runnerToken", "updatedAt"])
        return runner


def runner_seed_rotate(*, runner_name: str | None = None, dry_run: bool = False):
    """``seed_runner --rotate``: fresh registration token, and runner token when named."""
    changes = []
    with transaction.atomic():
        token_row = registration_token_rotate()
        changes.append("replaced the registration token(s) by a fresh one")
        runner = None
        if runner_name:
            existed = Runner.objects.filter(name=runner_name).exists()
            runner = runner_token_rotate(runner_name=runner_name, registration_token=token_row)
            verb = "gave a fresh token to" if existed else "created"
            changes.append(f"{verb} the runner {runner_name!r}")
        if dry_run:
            transaction.set_rollback(True)
    return RunnerSeedResult(
        registration_token=token_row.registrationToken,
        runner_name=runner_name or None,
        runner_token=runner.runnerToken if runner else None,
        changes=tuple(changes),
    )
