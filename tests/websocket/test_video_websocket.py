"""The JWT websocket ``ws/videos/<id>/`` beside socket.io, over a real uvicorn server."""

import json
import os
import subprocess
import sys
import time
import uuid
from datetime import timedelta

import jwt as pyjwt
import pytest
import requests
import socketio
from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from marsha_runner.websocket.middleware import is_socketio_path
from marsha_runner.websocket.notify import video_state_changed
from tests.conftest import free_port

pytestmark = pytest.mark.e2e

VIDEO_ID = uuid.uuid4()
BASE_DIR = django_settings.BASE_DIR


def change_video_permission():
    # The videos app owns the model; the permission row is created here so these tests do not
    # depend on that app (websocket sits below videos).
    content_type, _ = ContentType.objects.get_or_create(app_label="videos", model="video")
    permission, _ = Permission.objects.get_or_create(
        content_type=content_type, codename="change_video", defaults={"name": "Can change video"}
    )
    return permission


def make_user(*, permitted=True, active=True):
    user = get_user_model().objects.create_user(
        username=f"u-{uuid.uuid4().hex[:8]}", password="x", is_active=active
    )
    if permitted:
        user.user_permissions.add(change_video_permission())
    return user


def ws_url(live_server_url, path, token=None):
    url = live_server_url.replace("http://", "ws://", 1) + path
    return f"{url}?jwt={token}" if token is not None else url


def outcome(url, *, within=15.0):
    """("close", code) when the server closes, ("http", status) when it refuses the handshake,
    ("open", first message) when it talks, ("open", None) when it answers our ping with the
    socket still open.

    Events, not a silence read as "open": a server closing right after the handshake sends its
    close frame before it could answer a ping sent after it, so a pong with no close queued
    ahead of it means the socket stayed open. Nothing of these within ``within`` s fails.
    """
    try:
        with connect(url, open_timeout=within, close_timeout=2) as ws:
            try:
                pong = ws.ping()
                deadline = time.monotonic() + within
                while True:
                    answered = pong.is_set()  # read first: a close frame comes before it
                    try:
                        return ("open", ws.recv(timeout=0 if answered else 0.05))
                    except TimeoutError:
                        if answered:
                            return ("open", None)
                    assert time.monotonic() < deadline, f"no message, close or pong in {within}s"
            except ConnectionClosed as exc:
                return ("close", exc.rcvd.code if exc.rcvd else None)
    except InvalidStatus as exc:
        return ("http", exc.response.status_code)


@pytest.fixture
def video_path():
    return f"/ws/videos/{VIDEO_ID}/"


# --- The socket.io predicate, on scopes as uvicorn builds them --------------------------------


@pytest.mark.parametrize(
    ("path", "raw_path", "expected"),
    [
        ("/socket.io/", b"/socket.io/", True),
        ("/socket.io/", None, True),  # a server that gives no raw_path
        ("/socket.io/", b"/socket.io%2F", False),  # decoded path matches, raw does not
        ("/socket.io/", b"/socket.io/%2E", False),
        ("/socket.io/../ws/videos/x/", b"/socket.io/../ws/videos/x/", False),
        ("/socket.io", b"/socket.io", False),
        ("/socket.io/x", b"/socket.io/x", False),
        ("//socket.io/", b"//socket.io/", False),
        ("/socket.io//", b"/socket.io//", False),
        ("/socket.iox/", b"/socket.iox/", False),
        ("/SOCKET.IO/", b"/SOCKET.IO/", False),
    ],
)
def test_is_socketio_path_is_exact(path, raw_path, expected):
    scope = {"type": "websocket", "path": path}
    if raw_path is not None:
        scope["raw_path"] = raw_path
    assert is_socketio_path(scope) is expected


# --- A valid JWT receives the video's state changes -------------------------------------------


@pytest.fixture
def redis_channel_layer(settings):
    """channels_redis on REDIS_URL, as settings.py configures it when REDIS_URL is set."""
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [os.environ["REDIS_URL"]]},
        }
    }


def _notify_from_another_process(video_id, state):
    """What a Celery worker does: a separate Python process with REDIS_URL set."""
    code = (
        "import django; django.setup(); "
        "from marsha_runner.websocket.notify import video_state_changed; "
        f"video_state_changed(video_id='{video_id}', state='{state}', "
        "payload={'from': 'worker'})"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "marsha_runner.settings"}
    subprocess.run([sys.executable, "-c", code], env=env, cwd=BASE_DIR, check=True, timeout=60)


@pytest.mark.redis
def test_valid_jwt_receives_state_changes_over_redis(live_server_url, redis_channel_layer):
    """The consumer served by uvicorn gets what video_state_changed sends from the test thread
    (its own event loop) and from another process, through channels_redis."""
    video_id = uuid.uuid4()
    token = str(AccessToken.for_user(make_user()))
    with connect(ws_url(live_server_url, f"/ws/videos/{video_id}/", token), open_timeout=5) as ws:
        video_state_changed(video_id=uuid.uuid4(), state="ready")  # another video's group
        video_state_changed(
            video_id=video_id, state="processing", payload={"upload_error_reason": ""}
        )
        assert json.loads(ws.recv(timeout=5)) == {
            "type": "video.state",
            "video": str(video_id),
            "state": "processing",
            "upload_error_reason": "",
        }
        _notify_from_another_process(video_id, "ready")
        assert json.loads(ws.recv(timeout=10)) == {
            "type": "video.state",
            "video": str(video_id),
            "state": "ready",
            "from": "worker",
        }
        with pytest.raises(TimeoutError, match="timed out"):  # nothing from the other video
            ws.recv(timeout=0.5)


@pytest.mark.django_db(transaction=True)
def test_valid_jwt_receives_state_changes_in_memory(settings):
    """The in-memory layer (embedded default) works within one event loop: a sync caller run
    by the server (a view, an eager Celery task) reaches the consumer. The full ASGI app runs
    in Channels' communicator, in this test's loop."""
    from asgiref.testing import ApplicationCommunicator

    from marsha_runner.asgi import application

    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    token = str(AccessToken.for_user(make_user()))
    scope = {
        "type": "websocket",
        "path": f"/ws/videos/{VIDEO_ID}/",
        "raw_path": f"/ws/videos/{VIDEO_ID}/".encode(),
        "query_string": f"jwt={token}".encode(),
        "headers": [],
        "subprotocols": [],
    }

    async def scenario():
        # channels.testing needs daphne; asgiref's communicator is what it wraps.
        communicator = ApplicationCommunicator(application, scope)
        await communicator.send_input({"type": "websocket.connect"})
        assert (await communicator.receive_output(5))["type"] == "websocket.accept"
        await sync_to_async(video_state_changed)(video_id=uuid.uuid4(), state="error")
        await sync_to_async(video_state_changed)(
            video_id=VIDEO_ID, state="ready", payload={"resolutions": [240, 360]}
        )
        sent = await communicator.receive_output(5)
        nothing_else = await communicator.receive_nothing(0.3)
        await communicator.send_input({"type": "websocket.disconnect", "code": 1000})
        await communicator.wait(2)
        return json.loads(sent["text"]), nothing_else

    message, nothing_else = async_to_sync(scenario)()
    assert message == {
        "type": "video.state",
        "video": str(VIDEO_ID),
        "state": "ready",
        "resolutions": [240, 360],
    }
    assert nothing_else


def test_superuser_is_permitted(live_server_url, video_path):
    user = get_user_model().objects.create_superuser(username="root", password="x")
    token = str(AccessToken.for_user(user))
    assert outcome(ws_url(live_server_url, video_path, token)) == ("open", None)


def test_notify_never_raises_without_listeners_or_layer(settings, caplog):
    video_state_changed(video_id=uuid.uuid4(), state="ready")  # nobody in the group
    assert not caplog.records
    # A broken layer (Redis down, bad setting): logged, not raised. Changing the setting
    # resets Channels' cached layers, and pytest-django's fixture restores it afterwards.
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "no.such.Layer"}}
    video_id = uuid.uuid4()
    video_state_changed(video_id=video_id, state="ready")
    assert [r.getMessage() for r in caplog.records] == [
        f"Could not push the state of video {video_id}."
    ]


@pytest.mark.redis
def test_notify_never_raises_when_redis_is_unreachable(settings, caplog):
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [f"redis://127.0.0.1:{free_port()}/0"]},
        }
    }
    video_state_changed(video_id=uuid.uuid4(), state="error")
    assert "Could not push the state" in caplog.text


# --- Refusals: 4003 ---------------------------------------------------------------------------


def _forged(user, key):
    now = timezone.now()
    return pyjwt.encode(
        {
            "token_type": "access",
            "user_id": str(user.pk),
            "jti": uuid.uuid4().hex,
            "iat": int(now.timestamp()),
            "exp": int((now + timedelta(hours=1)).timestamp()),
        },
        key,
        algorithm="HS256",
    )


@pytest.mark.parametrize(
    "case",
    [
        "missing",
        "empty",
        "garbage",
        "wrong_key",
        "expired",
        "refresh_token",
        "no_permission",
        "inactive",
        "deleted_user",
        "duplicated_param",
    ],
)
def test_refused_with_4003(live_server_url, video_path, settings, case):
    user = make_user(permitted=case != "no_permission", active=case != "inactive")
    token = {
        "missing": None,
        "empty": "",
        "garbage": "not.a.jwt",
        "wrong_key": _forged(user, "another-signing-key-of-32-bytes-or-more"),
        "refresh_token": str(RefreshToken.for_user(user)),
    }.get(case, str(AccessToken.for_user(user)))
    if case == "expired":
        expired = AccessToken.for_user(user)
        expired.set_exp(from_time=timezone.now() - timedelta(hours=2), lifetime=timedelta(hours=1))
        token = str(expired)
    if case == "deleted_user":
        user.delete()
    url = ws_url(live_server_url, video_path, token)
    if case == "duplicated_param":
        url += "&jwt=other"
    assert outcome(url) == ("close", 4003)


def test_forged_token_with_the_real_key_is_accepted(live_server_url, video_path, settings):
    """Guards the wrong_key case above: the forging helper itself makes valid tokens."""
    token = _forged(make_user(), settings.SIMPLE_JWT["SIGNING_KEY"])
    assert outcome(ws_url(live_server_url, video_path, token)) == ("open", None)


# --- The socket.io bypass is exact ------------------------------------------------------------


TRICKS = [
    "/socket.io/../ws/videos/{id}/",
    "/socket.io/ws/videos/{id}/",
    "/socket.io/x",
    "/socket.io",
    "/socket.iox/ws/videos/{id}/",
    "/socket.io%2F..%2Fws/videos/{id}/",
    "/socket.io%2F",
    "/socket.io%2f",
    "/socket.io/%2E%2E/ws/videos/{id}/",
    "//socket.io/",
    "/socket.io//",
    "//ws/videos/{id}/",
    "/socket.io/ws/videos/{id}/x",
    "/ws/videos/{id}/x",
]


@pytest.mark.parametrize("trick", TRICKS)
def test_socketio_tricks_do_not_skip_the_jwt(live_server_url, trick):
    path = trick.format(id=VIDEO_ID)
    url = live_server_url.replace("http://", "ws://", 1) + path + "?EIO=4&transport=websocket"
    assert outcome(url) == ("close", 4003), path


def test_unknown_websocket_path_with_valid_jwt_is_closed(live_server_url):
    token = str(AccessToken.for_user(make_user()))
    for path in ("/ws/nothing/", "/ws/videos/not-a-uuid/", "/socket.io/x"):
        assert outcome(ws_url(live_server_url, path, token)) == ("close", 4404), path


def test_socketio_path_is_not_jwt_checked(live_server_url):
    """A bare websocket on exactly /socket.io/ reaches engine.io: it sends its open packet."""
    url = live_server_url.replace("http://", "ws://", 1) + "/socket.io/?EIO=4&transport=websocket"
    kind, message = outcome(url)
    assert kind == "open"
    assert message.startswith("0{") and '"sid"' in message


def test_encoded_socketio_path_over_http_goes_to_django(live_server_url):
    """HTTP follows the same predicate: a decoded-equal path is not socket.io."""
    genuine = requests.get(f"{live_server_url}/socket.io/?EIO=4&transport=polling", timeout=5)
    encoded = requests.get(f"{live_server_url}/socket.io%2F?EIO=4&transport=polling", timeout=5)
    assert genuine.status_code == 200 and genuine.text.startswith("0{")
    assert encoded.status_code == 404


def test_genuine_socketio_runner_connects(live_server_url):
    from django_peertube_runner_connector.models import Runner, RunnerRegistrationToken

    registration = RunnerRegistrationToken.objects.create(registrationToken=uuid.uuid4().hex)
    Runner.objects.create(
        name="ws-test-runner",
        runnerToken="ptrt-ws-test-runner-token",
        lastContact=timezone.now(),
        ip="127.0.0.1",
        runnerRegistrationToken=registration,
    )
    client = socketio.Client(reconnection=False)
    client.connect(
        live_server_url,
        namespaces=["/runners"],
        transports=["websocket"],
        auth={"runnerToken": "ptrt-ws-test-runner-token"},
        wait_timeout=5,
    )
    try:
        assert client.connected and "/runners" in client.namespaces
    finally:
        client.disconnect()


# --- The JWT never reaches the server log -----------------------------------------------------


def test_uvicorn_handshake_log_has_no_jwt(live_server_url, video_path):
    """uvicorn logs each websocket handshake with its query string: the token is redacted."""
    import logging

    records = []

    class ListHandler(logging.Handler):
        def emit(self, record):
            records.append(self.format(record))

    logger = logging.getLogger("uvicorn.error")
    handler, level = ListHandler(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        token = str(AccessToken.for_user(make_user()))
        assert outcome(ws_url(live_server_url, video_path, token)) == ("open", None)
        assert outcome(ws_url(live_server_url, video_path, token + "x")) == ("close", 4003)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    handshakes = [r for r in records if "WebSocket /ws/videos/" in r]
    assert len(handshakes) == 2, records
    assert all("jwt=[redacted]" in r for r in handshakes), handshakes
    assert not any(token in r for r in records)
