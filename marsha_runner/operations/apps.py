from django.apps import AppConfig


class OperationsConfig(AppConfig):
    name = "marsha_runner.operations"
    label = "operations"
    verbose_name = "Operations"
