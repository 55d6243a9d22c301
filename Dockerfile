# marsha_runner for the Docker dev stack (docker-compose.yml): the app (uvicorn) and the Celery
# worker run this image. Not tested in CI; the embedded default (`make run`) needs no Docker.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# ffprobe/ffmpeg: the launch task probes every upload.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# The lock first, so code changes do not reinstall the dependencies.
COPY requirements.lock pyproject.toml ./
RUN pip install -r requirements.lock

COPY . .
RUN pip install --no-deps -e . \
    && MARSHA_RUNNER_ENV_FILE=env.d/development python manage.py collectstatic --noinput -v 0 \
    && useradd --uid 1000 --create-home app \
    && mkdir -p /app/data/videos /app/staticfiles \
    && chown -R app:app /app/data /app/staticfiles

USER app
EXPOSE 8000
CMD ["uvicorn", "marsha_runner.asgi:application", "--host", "0.0.0.0", "--port", "8000"]
