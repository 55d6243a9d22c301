from django.apps import AppConfig


class WebsocketConfig(AppConfig):
    name = "marsha_runner.websocket"
    label = "websocket"
