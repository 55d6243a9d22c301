from django.apps import AppConfig


class StorageConfig(AppConfig):
    name = "marsha_runner.storage"
    label = "storage"

    def ready(self):
        from . import checks  # noqa: F401  (registers the system checks)
