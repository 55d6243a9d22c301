def test_admin_login_page(client):
    response = client.get("/admin/login/")
    assert response.status_code == 200
    assert b"Log in" in response.content


def test_admin_static_files_are_served_under_uvicorn(live_server_url):
    """No runserver in production or `make run`: WhiteNoise serves the admin's CSS."""
    import requests

    response = requests.get(f"{live_server_url}/static/admin/css/base.css", timeout=10)
    assert response.status_code == 200
    assert "text/css" in response.headers["Content-Type"]
    assert b"body" in response.content
