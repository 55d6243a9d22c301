"""The API's one error shape, asserted strictly: {"errors": [{"field", "message", "code"}]}."""


def api_errors(response, status: int) -> dict:
    """Assert ``response`` is a JSON error in the shape with ``status``; {field: message}."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert set(body) == {"errors"}, body
    assert isinstance(body["errors"], list) and body["errors"], body
    for error in body["errors"]:
        assert set(error) == {"field", "message", "code"}, error
        assert error["field"] is None or isinstance(error["field"], str), error
        assert isinstance(error["message"], str) and error["message"], error
        assert isinstance(error["code"], str) and error["code"], error
    return {error["field"]: error["message"] for error in body["errors"]}
