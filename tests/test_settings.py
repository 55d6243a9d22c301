"""Settings load from each env file, in a fresh process as `manage.py` would load them.

The production file is checked with ``check --deploy`` after its placeholders are filled with
real-looking values, as an operator would: it must be clean (no warning, no error).
"""

import json
import os
import re
import secrets
import socket
import subprocess
import sys
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parent.parent
MANAGE = str(BASE_DIR / "manage.py")
PRINT_SETTINGS = (
    "import json; from django.conf import settings as s; print(json.dumps({"
    "'DEBUG': s.DEBUG, 'ENGINE': s.DATABASES['default']['ENGINE'],"
    "'POOL': 'pool' in s.DATABASES['default'].get('OPTIONS', {}),"
    "'STORAGE_BACKEND': s.STORAGE_BACKEND, 'VIDEOS': s.STORAGES['videos']['BACKEND'],"
    "'EAGER': s.CELERY_TASK_ALWAYS_EAGER, 'REDIS_URL': s.REDIS_URL,"
    "'SSL_REDIRECT': s.SECURE_SSL_REDIRECT, 'ALLOWED_HOSTS': s.ALLOWED_HOSTS,"
    "'ENV_FILE': str(s.ENV_FILE)}))"
)


def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def manage(env_file, *args, cwd, **extra_env):
    """Run manage.py with only the env file as configuration (no variable from CI leaks in)."""
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/tmp"),
        "MARSHA_RUNNER_ENV_FILE": str(env_file),
        **extra_env,
    }
    return subprocess.run(
        [sys.executable, MANAGE, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def loaded_settings(env_file, cwd, **extra_env):
    result = manage(env_file, "shell", "-c", PRINT_SETTINGS, cwd=cwd, **extra_env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def fill_production(tmp_path, *, database_port):
    """env.d/production.dist with every <placeholder> filled in, as an operator would."""
    values = {
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
        "DJANGO_ALLOWED_HOSTS": "runner.example.org",
        "DJANGO_CSRF_TRUSTED_ORIGINS": "https://runner.example.org",
        # Nobody answers there: `check` must not need the database.
        "DATABASE_URL": f"postgres://marsha:{secrets.token_hex(8)}@127.0.0.1:{database_port}/marsha",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "RUNNERS_CALLBACK_DOMAIN": "https://runner.example.org",
        "JWT_SIGNING_KEY": secrets.token_urlsafe(48),
        "SCALEWAY_S3_BUCKET": "marsha-videos",
        "AWS_LEGACY_S3_BUCKET": "marsha-legacy",
    }
    lines = []
    for line in (BASE_DIR / "env.d" / "production.dist").read_text().splitlines():
        match = re.match(r"^([A-Z0-9_]+)=(.*)$", line)
        if match and "<" in match.group(2):
            name = match.group(1)
            line = f"{name}={values.get(name, 'filled-' + secrets.token_hex(12))}"
        lines.append(line)
    text = "\n".join(lines) + "\n"
    assert not re.search(r"^[A-Z0-9_]+=.*<", text, re.M), "a placeholder was left unfilled"
    path = tmp_path / "production"
    path.write_text(text)
    return path


@pytest.mark.ffmpeg
def test_development(tmp_path):
    env_file = BASE_DIR / "env.d" / "development"

    result = manage(env_file, "check", "--fail-level", "WARNING", cwd=tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    loaded = loaded_settings(env_file, tmp_path)
    assert loaded["DEBUG"] is True
    assert loaded["ENGINE"] == "django.db.backends.sqlite3"
    assert loaded["STORAGE_BACKEND"] == "marsha_runner.storage.filesystem"
    assert loaded["VIDEOS"] == "django.core.files.storage.FileSystemStorage"
    assert loaded["EAGER"] is True
    assert loaded["REDIS_URL"] == ""
    assert not list(tmp_path.iterdir()), "check created files (a database?)"


@pytest.mark.ffmpeg
def test_test_env(tmp_path):
    env_file = BASE_DIR / "env.d" / "test"

    result = manage(env_file, "check", "--fail-level", "WARNING", cwd=tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    loaded = loaded_settings(env_file, tmp_path)
    assert loaded["STORAGE_BACKEND"] == "marsha_runner.storage.dummy"
    assert loaded["VIDEOS"] == "django.core.files.storage.InMemoryStorage"
    assert loaded["EAGER"] is True


def check_deploy(env_file, tmp_path):
    """``check --deploy`` failing on warnings too.

    Without the pool, the dev-token check finds no database at once (the pool would wait
    its timeout first); it must then report nothing rather than crash.
    """
    return manage(
        env_file,
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        cwd=tmp_path,
        DATABASE_POOL="False",
    )


@pytest.mark.ffmpeg
def test_production_check_deploy_clean(tmp_path):
    env_file = fill_production(tmp_path, database_port=closed_port())

    result = check_deploy(env_file, tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout
    loaded = loaded_settings(env_file, tmp_path)
    assert loaded["DEBUG"] is False
    assert loaded["ENGINE"] == "django.db.backends.postgresql"
    assert loaded["POOL"] is True
    assert loaded["STORAGE_BACKEND"] == "marsha_runner.storage.s3"
    assert loaded["VIDEOS"] == "marsha_runner.storage.s3.VideoS3Storage"
    assert loaded["EAGER"] is False
    assert loaded["REDIS_URL"] == "redis://127.0.0.1:6379/0"
    assert loaded["SSL_REDIRECT"] is True
    assert loaded["ALLOWED_HOSTS"] == ["runner.example.org"]


def test_production_unfilled_secret_key_is_caught(tmp_path):
    """The deploy check is able to fail: a placeholder secret key is flagged."""
    env_file = fill_production(tmp_path, database_port=closed_port())
    text = re.sub(
        r"^DJANGO_SECRET_KEY=.*$",
        "DJANGO_SECRET_KEY=<secret-key>",
        env_file.read_text(),
        flags=re.M,
    )
    env_file.write_text(text)

    result = check_deploy(env_file, tmp_path)

    assert result.returncode != 0
    assert "security.W009" in result.stdout + result.stderr


def test_environment_wins_over_env_file(tmp_path):
    env_file = BASE_DIR / "env.d" / "development"

    loaded = loaded_settings(
        env_file, tmp_path, DJANGO_DEBUG="False", STORAGE_BACKEND="marsha_runner.storage.dummy"
    )

    assert loaded["DEBUG"] is False
    assert loaded["STORAGE_BACKEND"] == "marsha_runner.storage.dummy"


def test_missing_env_file_is_a_clear_error(tmp_path):
    result = manage(tmp_path / "nope", "check", cwd=tmp_path)

    assert result.returncode != 0
    assert "does not exist (MARSHA_RUNNER_ENV_FILE)" in result.stderr


def test_every_env_variable_is_documented():
    """Each variable of production.dist and development is commented in its file."""
    for name in ("development", "test", "production.dist"):
        lines = (BASE_DIR / "env.d" / name).read_text().splitlines()
        assert lines[0].startswith("#"), name
        assigned = [line for line in lines if re.match(r"^[A-Z0-9_]+=", line)]
        assert assigned, name


@pytest.mark.parametrize(
    ("extra_env", "expected"),
    [
        ({}, "http://127.0.0.1:8000"),
        ({"PORT": "8123"}, "http://127.0.0.1:8123"),
        ({"HOST": "0.0.0.0", "PORT": "8124"}, "http://127.0.0.1:8124"),
        ({"HOST": "::1", "PORT": "8125"}, "http://[::1]:8125"),
        ({"PORT": "8126", "RUNNERS_CALLBACK_DOMAIN": "https://x.example"}, "https://x.example"),
    ],
)
def test_runner_callback_domain_follows_host_and_port(tmp_path, extra_env, expected):
    """`make run PORT=…` moves the server; the job URLs handed to runners follow it."""
    result = manage(
        BASE_DIR / "env.d" / "development",
        "shell",
        "-c",
        "from django.conf import settings as s; print(s.RUNNERS_CALLBACK_DOMAIN)",
        cwd=tmp_path,
        **extra_env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == expected
