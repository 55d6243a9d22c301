"""Django's admin, its modules imported when the admin is used rather than at every start.

``AdminConfig.ready`` imports every app's ``admin`` module in every process: management
commands, cron and Celery workers, which never use the admin, paid 0.2 s of each start for it
(import-export's file formats, the fleet pages). Here the URLconf imports them (``urls.py``)
and so do the admin's system checks, which see every ModelAdmin whichever check runs first.
"""

from django.contrib.admin import autodiscover
from django.contrib.admin.apps import SimpleAdminConfig
from django.contrib.admin.checks import check_admin_app, check_dependencies
from django.core import checks


def check_admin_modules(app_configs, **kwargs):
    """Django's checks of every registered ModelAdmin, the admin modules imported first."""
    autodiscover()
    return check_admin_app(app_configs, **kwargs)


class AdminConfig(SimpleAdminConfig):
    def ready(self):
        checks.register(check_dependencies, checks.Tags.admin)
        checks.register(check_admin_modules, checks.Tags.admin)
