"""Settings for marsha_runner, read from the environment (12-factor).

One module for every environment: the values come from environment variables, with defaults
from one env file chosen by ``MARSHA_RUNNER_ENV_FILE`` (default ``env.d/development``, or
``env.d/test`` while pytest runs). Variables already set in the environment win over the file.
Every variable is documented in the env.d files. The storage and runner settings are in
``settings_parts/`` (imported here, names unchanged).
"""

import os
import sys
from pathlib import Path

from kombu import Queue

# Neither imports prometheus-client (it must see PROMETHEUS_MULTIPROC_DIR first, set below).
from marsha_runner.observability.logconfig import logging_config, secret_values
from marsha_runner.observability.sentry import sentry_init

# The env file is read first; every part reads its settings from it (settings_parts/).
from marsha_runner.settings_parts.environment import BASE_DIR, ENV_FILE, env  # noqa: F401
from marsha_runner.settings_parts.runners import *  # noqa: F403
from marsha_runner.settings_parts.storage import *  # noqa: F403

# --- Core -------------------------------------------------------------------------------------

SECRET_KEY = env("DJANGO_SECRET_KEY")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "marsha_runner.admin_apps.AdminConfig",  # Django's admin, its modules imported by urls.py
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

# --- Storage, and the migration of legacy media: settings_parts/storage.py ------------------

# --- PeerTube runners, transcoding, the dev runner: settings_parts/runners.py ---------------

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
