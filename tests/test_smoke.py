import pytest
import socketio


def test_admin_login_page(client):
    response = client.get("/admin/login/")
    assert response.status_code == 200
    assert b"Log in" in response.content


@pytest.mark.e2e
def test_socketio_refuses_unknown_token(live_server_url):
    sio = socketio.Client(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        sio.connect(
            live_server_url,
            namespaces=["/runners"],
            transports=["websocket"],
            auth={"runnerToken": "nope"},
            wait_timeout=5,
        )
