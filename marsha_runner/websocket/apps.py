from django.apps import AppConfig


class WebsocketConfig(AppConfig):
    name = "marsha_runner.websocket"
    label = "websocket"

    def ready(self):
        from marsha_runner.websocket.redact import install_jwt_redaction

        install_jwt_redaction()
