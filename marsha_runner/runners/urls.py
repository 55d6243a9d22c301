"""Runner API routes, anchored at ^api/v1/runners/ (the library's own pattern is not:
docs/design.md#inherited-defaults).

One URL, one view, listed here: nothing is published by a router or inherited from the
library's viewsets. The source download keeps the library's URL name
(``runner-jobs-download_video_file``): it reverses it to build each job's ``videoFileUrl``.
Path segments take anything but ``/``, so a malformed uuid reaches the view (400, as PeerTube).
"""

from django.urls import path, re_path

from . import views
from .dispatch import runner_jobs_request

# jobs/request is the async view of dispatch.py; runners/asgi.py routes this path straight to
# it, past the middleware stack.
JOBS_REQUEST_PATH = "api/v1/runners/jobs/request"

urlpatterns = [
    re_path(r"^api/v1/runners/register$", views.runner_register, name="runner-register"),
    re_path(r"^api/v1/runners/unregister$", views.runner_unregister, name="runner-unregister"),
    path(JOBS_REQUEST_PATH, runner_jobs_request, name="runner-jobs-request"),
    re_path(
        r"^api/v1/runners/jobs/(?P<job_uuid>[^/]+)/accept$",
        views.runner_job_accept,
        name="runner-jobs-accept",
    ),
    re_path(
        r"^api/v1/runners/jobs/(?P<job_uuid>[^/]+)/update$",
        views.runner_job_update,
        name="runner-jobs-update",
    ),
    re_path(
        r"^api/v1/runners/jobs/(?P<job_uuid>[^/]+)/success$",
        views.runner_job_success,
        name="runner-jobs-success",
    ),
    re_path(
        r"^api/v1/runners/jobs/(?P<job_uuid>[^/]+)/error$",
        views.runner_job_error,
        name="runner-jobs-error",
    ),
    re_path(
        r"^api/v1/runners/jobs/(?P<job_uuid>[^/]+)/abort$",
        views.runner_job_abort,
        name="runner-jobs-abort",
    ),
    re_path(
        r"^api/v1/runners/jobs/files/videos/(?P<video_uuid>[^/]+)/(?P<job_uuid>[^/]+)/max-quality$",
        views.runner_job_source,
        name="runner-jobs-download_video_file",
    ),
]
