"""Optional Sentry, as Marsha runs it: on when ``SENTRY_DSN`` is set, off otherwise.

Django and Celery errors are reported with the request id, video id and job uuid as tags (so
an event leads to its log lines), no personal data (``send_default_pii`` off), and every
string of the event redacted like a log line before it leaves the process.
"""

from marsha_runner.telemetry.context import context_current
from marsha_runner.telemetry.logs import redact


def _scrub(value, literals):
    if isinstance(value, str):
        return redact(value, literals)
    if isinstance(value, dict):
        return {key: _scrub(item, literals) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(item, literals) for item in value]
    return value


def sentry_before_send(literals):
    def before_send(event, hint):
        tags = event.setdefault("tags", {})
        for name, value in context_current().items():
            tags.setdefault(name, value)
        return _scrub(event, literals)

    return before_send


def sentry_init(*, dsn: str, environment: str, release: str, traces_sample_rate: float, secrets):
    """Called by the settings when ``SENTRY_DSN`` is set (the SDK wants it before Django)."""
    import sentry_sdk  # optional: only a deployment with a DSN loads the SDK
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(
        dsn=dsn,
        environment=environment or None,
        release=release or None,
        traces_sample_rate=traces_sample_rate,
        send_default_pii=False,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        before_send=sentry_before_send([s for s in secrets if s]),
        before_send_transaction=sentry_before_send([s for s in secrets if s]),
    )
