from django.apps import AppConfig


class MigrationConfig(AppConfig):
    name = "marsha_runner.migration"
    label = "migration"
    verbose_name = "Migration to Scaleway"

    def ready(self):
        # Registers the per-video task under the name run.MIGRATE_VIDEO_TASK enqueues by, in
        # every process (web, worker, shell), before anything can enqueue it.
        from . import tasks  # noqa: F401
