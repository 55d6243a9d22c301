"""A real socket.io client against the app served by uvicorn, with the seeded runner token."""

import logging

import pytest
import socketio

from marsha_runner.runners.tokens import runner_seed

pytestmark = pytest.mark.e2e
# The server answered the /runners connect with a refusal (not a transport failure).
REFUSED = "^One or more namespaces failed to connect: /runners$"


def connect(url, **kwargs):
    client = socketio.Client(reconnection=False)
    client.connect(
        url, namespaces=["/runners"], transports=["websocket"], wait_timeout=5, **kwargs
    )
    return client


@pytest.fixture
def seeded(settings):
    """The pre-registered runner of seed_runner (dev tokens: a dev machine, DEBUG on)."""
    settings.DEBUG = True
    return runner_seed(
        registration_token=settings.PEERTUBE_RUNNER_REGISTRATION_TOKEN,
        runner_name=settings.PEERTUBE_RUNNER_NAME,
        runner_token=settings.PEERTUBE_RUNNER_TOKEN,
    )


def test_seeded_runner_token_connects_and_is_never_logged(live_server_url, seeded, caplog):
    caplog.set_level(logging.DEBUG)
    client = connect(live_server_url, auth={"runnerToken": seeded.runner_token})
    try:
        assert client.connected
        assert "/runners" in client.namespaces
        assert client.get_sid("/runners")
    finally:
        client.disconnect()
    # Our handler logged the connection (so logs were captured), by name, not by token.
    assert any(seeded.runner_name in r.getMessage() for r in caplog.records)
    assert seeded.runner_token not in caplog.text


def test_missing_auth_is_refused(live_server_url, seeded, caplog):
    caplog.set_level(logging.DEBUG)
    with pytest.raises(socketio.exceptions.ConnectionError, match=REFUSED):
        connect(live_server_url)
    with pytest.raises(socketio.exceptions.ConnectionError, match=REFUSED):
        connect(live_server_url, auth={})
    assert "Traceback" not in caplog.text


def test_unknown_token_is_refused_and_not_logged(live_server_url, seeded, caplog):
    caplog.set_level(logging.DEBUG)
    unknown = "ptrt-11111111-2222-4333-8444-555555555555"
    with pytest.raises(socketio.exceptions.ConnectionError, match=REFUSED):
        connect(live_server_url, auth={"runnerToken": unknown})
    with pytest.raises(socketio.exceptions.ConnectionError, match=REFUSED):
        connect(live_server_url, auth={"runnerToken": seeded.registration_token})
    assert unknown not in caplog.text
    assert seeded.registration_token not in caplog.text


def test_rotated_runner_token_connects_and_the_old_one_is_refused(live_server_url, seeded):
    from marsha_runner.runners.tokens import runner_seed_rotate

    rotated = runner_seed_rotate(runner_name=seeded.runner_name)
    with pytest.raises(socketio.exceptions.ConnectionError, match=REFUSED):
        connect(live_server_url, auth={"runnerToken": seeded.runner_token})
    client = connect(live_server_url, auth={"runnerToken": rotated.runner_token})
    try:
        assert client.connected
    finally:
        client.disconnect()
