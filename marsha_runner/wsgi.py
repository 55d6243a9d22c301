"""WSGI entry point (HTTP only: runners need the ASGI app for socket.io)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marsha_runner.settings")
application = get_wsgi_application()
