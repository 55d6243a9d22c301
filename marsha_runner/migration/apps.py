from django.apps import AppConfig


class MigrationConfig(AppConfig):
    name = "marsha_runner.migration"
    label = "migration"
    verbose_name = "Migration to Scaleway"
