from django.apps import AppConfig


class VideosConfig(AppConfig):
    name = "marsha_runner.videos"
    label = "videos"
    verbose_name = "Videos"
