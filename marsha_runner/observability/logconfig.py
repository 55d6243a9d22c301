"""``settings.LOGGING``, built in one place: plain text or JSON lines, correlation ids on
every line, secrets redacted on every line.

``LOG_FORMAT=json`` writes one JSON object per line (``telemetry.logs.JSONFormatter``) and
replaces uvicorn's access line (a raw path: a private HLS URL carries its token in it) by our
own, which names the route instead of the path (``LOG_ACCESS``, on by default in JSON).
"""

import logging

from django.conf import settings

from marsha_runner.telemetry.logs import RedactSecretsFilter

FORMATS = ("plain", "json")
SERVER_LOGGERS = ("uvicorn.error", "uvicorn.access")


def logging_config(*, level: str, log_format: str, secrets) -> dict:
    """The dictConfig of the project. ``secrets``: configured values never to be printed."""
    if log_format not in FORMATS:
        raise ValueError(f"LOG_FORMAT must be one of {', '.join(FORMATS)}, not {log_format!r}")
    json_lines = log_format == "json"
    config = {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "context": {"()": "marsha_runner.telemetry.logs.ContextFilter"},
            "redact": {
                "()": "marsha_runner.telemetry.logs.RedactSecretsFilter",
                "literals": list(secrets),
            },
        },
        "formatters": {
            "plain": {
                "()": "marsha_runner.telemetry.logs.PlainFormatter",
                "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
            },
            "json": {"()": "marsha_runner.telemetry.logs.JSONFormatter"},
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": log_format,
                "filters": ["context", "redact"],
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # Django's default config gives "django" its own console handler under DEBUG: with
            # ours on the root every 4xx/5xx line was printed twice (measured on jobs/request).
            "django": {"handlers": [], "level": "INFO", "propagate": True},
            # uvicorn's access log already has a line per request with its status; Django's
            # warning per 4xx repeated it (half the cost of a refused runner call, measured).
            # 5xx are still logged with their traceback.
            "django.request": {"level": "ERROR"},
            # The library logs runner tokens at INFO in its socket handler; ours replaces it,
            # and its own socket logger is kept quiet in case an upgrade brings it back.
            "django_peertube_runner_connector.socket": {"level": "WARNING"},
            # Celery's worker keeps this configuration (celery_context.keep_django_logging).
            "celery": {"level": level},
        },
    }
    if json_lines:
        # uvicorn's own lines in JSON through our handler; its access line is ours instead.
        config["loggers"]["uvicorn"] = {"handlers": ["console"], "propagate": False}
        config["loggers"]["uvicorn.error"] = {"handlers": [], "propagate": True}
        config["loggers"]["uvicorn.access"] = {"handlers": [], "propagate": False}
    return config


def secret_values(conf) -> list[str]:
    """The configured secrets a log line must never show, read from ``conf`` (Django's
    settings, or the settings module while it is being read)."""
    storages = getattr(conf, "STORAGES", {})
    scaleway = storages.get("videos", {}).get("OPTIONS", {})
    legacy = storages.get("aws_legacy", {}).get("OPTIONS", {})
    return [
        getattr(conf, "SECRET_KEY", ""),
        getattr(conf, "SIMPLE_JWT", {}).get("SIGNING_KEY"),
        scaleway.get("secret_key"),
        legacy.get("secret_key"),
        getattr(conf, "METRICS_TOKEN", ""),
        getattr(conf, "DATABASES", {}).get("default", {}).get("PASSWORD"),
        *getattr(conf, "DEV_RUNNER_TOKENS", []),
    ]


def install_server_log_filters() -> None:
    """uvicorn's loggers get the redaction too (idempotent): in plain mode they keep their
    own handlers, which the filters of ours do not reach."""
    for name in SERVER_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecretsFilter) for f in logger.filters):
            logger.addFilter(RedactSecretsFilter(literals=secret_values(settings)))
