"""System checks for the settings the library reads without defaults."""

from django.conf import settings
from django.core.checks import Error, register
from django.db import DatabaseError

from .tokens import runner_tokens_in_use

REQUIRED_SETTINGS = (
    "TRANSCODING_ENDED_CALLBACK_PATH",
    "TRANSCODING_RUNNER_MAX_FAILURE",
    "TRANSCODING_RESOLUTIONS_144P",
    "TRANSCODING_RESOLUTIONS_240P",
    "TRANSCODING_RESOLUTIONS_360P",
    "TRANSCODING_RESOLUTIONS_480P",
    "TRANSCODING_RESOLUTIONS_720P",
    "TRANSCODING_RESOLUTIONS_1080P",
    "TRANSCODING_RESOLUTIONS_1440P",
    "TRANSCODING_RESOLUTIONS_2160P",
    "TRANSCODING_FPS_MIN",
    "TRANSCODING_FPS_STANDARD",
    "TRANSCODING_FPS_HD_STANDARD",
    "TRANSCODING_FPS_AUDIO_MERGE",
    "TRANSCODING_FPS_AVERAGE",
    "TRANSCODING_FPS_MAX",
    "TRANSCODING_FPS_KEEP_ORIGIN_FPS_RESOLUTION_MIN",
    "TRANSCRIPTION_ENDED_CALLBACK_PATH",
    "TRANSCRIPTION_ERROR_CALLBACK_PATH",
)


@register()
def check_transcoding_settings(app_configs, **kwargs):
    return [
        Error(
            f"Setting {name} is missing: django-peertube-runner-connector reads it "
            "without a default and would fail in the middle of a transcoding.",
            hint="Set it in marsha_runner/settings.py (see env.d/development).",
            id="marsha_runner.runners.E001",
        )
        for name in REQUIRED_SETTINGS
        if not hasattr(settings, name)
    ]


@register()  # runs under --deploy too; registering it twice would report it twice
def check_dev_runner_tokens(app_configs, **kwargs):
    """The dev tokens of env.d/peertube_runner are public: never in production."""
    if settings.DEBUG:
        return []

    dev_tokens = {t for t in getattr(settings, "DEV_RUNNER_TOKENS", []) if t}
    try:
        in_use = runner_tokens_in_use(dev_tokens)
    except DatabaseError:  # no database yet (check before migrate): nothing to compare
        return []
    if in_use:
        return [
            Error(
                "The dev runner tokens of env.d/peertube_runner are in use while DEBUG is off.",
                hint="Run `manage.py seed_runner --rotate --runner-name <name>`.",
                id="marsha_runner.runners.E002",
            )
        ]
    return []
