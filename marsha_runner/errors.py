"""One shape for every error of the HTTP API (not the runner protocol, which speaks PeerTube's
problem documents): ``{"errors": [{"field": <input name or null>, "message": "…", "code": "…"}]}``.

DRF's exceptions reach it through ``REST_FRAMEWORK["EXCEPTION_HANDLER"]``; plain Django views of
the API (the filesystem upload endpoint) answer with :func:`error_response`.
"""

import logging

from django.http import JsonResponse
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.views import exception_handler as drf_exception_handler

from marsha_runner.storage.outages import (
    OUTAGE_MESSAGE,
    is_outage,
    outage_describe,
    outage_retry_after,
)

logger = logging.getLogger(__name__)

NON_FIELD_KEYS = ("detail", "non_field_errors")


def error_entry(message, *, field=None, code=None) -> dict:
    return {"field": field, "message": str(message), "code": code or "invalid"}


def error_body(*entries: dict) -> dict:
    return {"errors": list(entries)}


def error_response(status_code: int, message: str, *, field=None, code=None, headers=None):
    """A JsonResponse in the API's error shape, for views outside DRF."""
    return JsonResponse(
        error_body(error_entry(message, field=field, code=code)),
        status=status_code,
        headers=headers,
    )


def _flatten(detail, field=None) -> list[dict]:
    """DRF's nested detail (dicts of lists of ErrorDetail) as flat entries, ``a.b`` for nesting;
    ``detail`` and ``non_field_errors`` keep their parent's field (null at the top)."""
    if isinstance(detail, dict):
        entries = []
        for key, value in detail.items():
            if key in NON_FIELD_KEYS:
                name = field
            else:
                name = f"{field}.{key}" if field else str(key)
            entries += _flatten(value, name)
        return entries
    if isinstance(detail, list):
        return [entry for item in detail for entry in _flatten(item, field)]
    return [error_entry(detail, field=field, code=getattr(detail, "code", None))]


def api_exception_handler(exc, context):
    """DRF's handler (status, headers such as WWW-Authenticate, rollback), our body; an outage
    is a 503 with ``Retry-After`` (the service's transaction rolled back: nothing half-written)."""
    response = drf_exception_handler(exc, context)
    if response is not None:
        response.data = error_body(*_flatten(response.data))
    elif is_outage(exc):
        return outage_response(exc, where=type(context.get("view")).__name__)
    return response


def outage_response(exc, *, where: str):
    """503 in the API's error shape with ``Retry-After``; the cause is logged by type only,
    the place by view name (a path may carry a token: the HLS view's)."""
    logger.warning("Outage answered 503 in %s: %s.", where, outage_describe(exc))
    seconds = outage_retry_after()
    return error_response(
        503, OUTAGE_MESSAGE, code="unavailable", headers={"Retry-After": str(seconds)}
    )


class OutageMiddleware:
    """Any view outside DRF (the HLS playlist view, the upload endpoint, the admin): an outage
    raised by the view answers 503 + ``Retry-After`` in the API's shape, never a 500."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if is_outage(exception):
            match = request.resolver_match
            return outage_response(exception, where=match.view_name if match else "a view")
        return None


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "too_large"


ErrorSerializer = inline_serializer(
    name="Errors",
    fields={
        "errors": serializers.ListField(
            child=inline_serializer(
                name="Error",
                fields={
                    "field": serializers.CharField(
                        allow_null=True,
                        help_text="The input at fault (a.b when nested), null for the request.",
                    ),
                    "message": serializers.CharField(),
                    "code": serializers.CharField(help_text="Machine-readable, e.g. invalid."),
                },
            )
        )
    },
)

ERROR_DESCRIPTIONS = {
    400: "Invalid input: each entry names its field.",
    401: "No valid credentials (a JWT as `Authorization: Bearer …`).",
    403: "Authenticated, without the permission to change videos.",
    404: "No such video (also a malformed id) or no such page.",
    405: "Method not allowed on this path.",
    413: "The request body is too large.",
    503: "A storage, broker or database outage: nothing was changed; retry after Retry-After.",
}


def error_responses(*codes: int) -> dict:
    """``responses`` entries of extend_schema documenting these error statuses."""
    return {
        code: OpenApiResponse(ErrorSerializer, description=ERROR_DESCRIPTIONS[code])
        for code in codes
    }
