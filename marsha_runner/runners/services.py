"""Services of the runners app: the only module the rest of the project calls."""

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
