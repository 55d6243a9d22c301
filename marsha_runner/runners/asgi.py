"""``jobs/request`` straight to its view, without the middleware stack (issue 6).

A fleet calls ``jobs/request`` N times per ping. The project's middleware (sessions, CSRF,
auth, messages, WhiteNoise: sync-only, so each request hops threads) does nothing for a
runner, which authenticates by its token in the body. This router sends exactly that path
to a Django handler whose only step before the view is Django's ALLOWED_HOSTS check; every
other request goes to the full Django application.
"""

from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.exception import convert_exception_to_response

from .urls import JOBS_REQUEST_PATH

FAST_PATHS = frozenset({"/" + JOBS_REQUEST_PATH})


class BareASGIHandler(ASGIHandler):
    """Django's ASGI handler (signals, URL resolution, errors) with no middleware."""

    def load_middleware(self, is_async=False):
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        self._middleware_chain = convert_exception_to_response(self._host_checked)

    async def _host_checked(self, request):
        request.get_host()  # DisallowedHost → 400, as CommonMiddleware would
        return await self._get_response_async(request)


def runner_fast_routes(application):
    """Wrap ``application``: the fast paths go to a BareASGIHandler, the rest to it."""
    bare = BareASGIHandler()

    async def route(scope, receive, send):
        if scope["type"] == "http" and scope["path"] in FAST_PATHS:
            return await bare(scope, receive, send)
        return await application(scope, receive, send)

    return route
