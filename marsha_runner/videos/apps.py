from django.apps import AppConfig


class VideosConfig(AppConfig):
    name = "marsha_runner.videos"
    label = "videos"
    verbose_name = "Videos"

    def ready(self):
        # Registers the launch task under the name launch.LAUNCH_TASK enqueues by, in every
        # process (web, worker, shell) before any upload can end.
        from . import tasks  # noqa: F401
