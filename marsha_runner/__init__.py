"""marsha_runner: transcode uploads with self-hosted PeerTube runners."""

from .celery import app as celery_app

__all__ = ("celery_app",)
