from django.apps import AppConfig


class RunnersConfig(AppConfig):
    name = "marsha_runner.runners"
    label = "runners"
    verbose_name = "Transcoding"

    def ready(self):
        from . import checks  # noqa: F401  (registers the system checks)
        from .library_storage import runners_library_storage_follow

        runners_library_storage_follow()
