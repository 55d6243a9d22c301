from django.apps import AppConfig


class ObservabilityConfig(AppConfig):
    name = "marsha_runner.observability"
    label = "observability"
    verbose_name = "Observability"

    def ready(self):
        # Django's place for connecting signal handlers (the apps are loaded by now).
        from . import celery_context  # noqa: F401 - connects the Celery signal handlers
        from .logconfig import install_server_log_filters

        install_server_log_filters()
