"""Refusals of the runner API, rendered as PeerTube's problem documents.

A service refuses a runner call by raising ``RunnerRefusal(status, code, detail)``; the view
renders it with ``problem_response``. The body has PeerTube's shape (RFC 7807 plus ``code`` and
the legacy ``error``): peertube-runner reads ``code`` (``unknown_runner_token`` makes it drop the
server, ``runner_job_not_in_pending_state`` is a quiet race). ``runner_body`` reads a call's
values, refusing a body that is not one.
"""

import json
from http import HTTPStatus

from django.http import JsonResponse

PROBLEM_TYPE = "https://docs.joinpeertube.org/api-rest-reference.html#section/Errors/"
PROBLEM_CONTENT_TYPE = "application/problem+json"


class RunnerRefusal(Exception):
    """A runner call refused with PeerTube's status and ``code``; nothing was changed."""

    def __init__(self, status: int, code: str, detail: str):
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail

    def __repr__(self):
        return f"RunnerRefusal({self.status}, {self.code!r}, {self.detail!r})"


def problem_response(refusal: RunnerRefusal) -> JsonResponse:
    body = {
        "type": PROBLEM_TYPE + refusal.code,
        "title": HTTPStatus(refusal.status).phrase,
        "status": refusal.status,
        "detail": refusal.detail,
        "code": refusal.code,
        "error": refusal.detail,  # PeerTube keeps it for runners older than 3.2
    }
    return JsonResponse(body, status=refusal.status, content_type=PROBLEM_CONTENT_TYPE)


def runner_body(request) -> dict:
    """The call's values: a JSON object (peertube-runner) or form/multipart fields."""
    if request.content_type == "application/json":
        try:
            data = json.loads(request.body or b"{}")
        except ValueError as err:
            raise RunnerRefusal(400, "invalid_request", "The body is not valid JSON.") from err
        if not isinstance(data, dict):
            raise RunnerRefusal(400, "invalid_request", "The body must be a JSON object.")
        return data
    return {key: request.POST.get(key) for key in request.POST}
