"""Settings of the video storages (filesystem, S3, memory), the legacy AWS storage, and the
migration of legacy media to Scaleway (``manage.py migrate_to_scaleway``).

Apart from ``settings.py`` because these blocks only concern where media live and how they
move; ``settings.py`` imports every name here.
"""

from marsha_runner.settings_parts.environment import BASE_DIR, env

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
# Object GET, PUT and listing of S3 stores as plain signed HTTP (a quarter of boto3's CPU per
# call); False sends every call through boto3.
MIGRATION_PLAIN_HTTP = env.bool("MIGRATION_PLAIN_HTTP", default=True)
# A run holds a per-video lease it renews while copying (every MIGRATION_LOCK_RENEW_EVERY
# seconds, a quarter of the TTL by default); a lease not renewed for MIGRATION_LOCK_TTL seconds
# (its process died) may be taken over, and a run whose renewal fails stops copying.
MIGRATION_LOCK_TTL = env.int("MIGRATION_LOCK_TTL", default=120)
MIGRATION_LOCK_RENEW_EVERY = env.float("MIGRATION_LOCK_RENEW_EVERY", default=None)
