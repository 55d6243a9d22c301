"""Celery application: eager in the embedded default, Redis-brokered in production."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marsha_runner.settings")

app = Celery("marsha_runner")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
