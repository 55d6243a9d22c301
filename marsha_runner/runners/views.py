"""The runner API: one plain view per URL, each parsing the body and calling one service.

Runners authenticate in the body (``runnerToken``, plus ``jobToken`` on job calls), never with
cookies or headers: no CSRF, no session, none of the project's DRF defaults. Bodies are JSON
(peertube-runner) or form/multipart (success uploads its files). A refusal is PeerTube's
problem document (``problems.py``). Nothing here is inherited from the library's viewsets, so
an upgrade of it cannot publish an action without our checks.
"""

import functools
import logging

from django.http import HttpResponse, HttpResponseRedirect, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from django_peertube_runner_connector.serializers import RunnerJobSerializer
from django_peertube_runner_connector.utils.request import get_client_ip

from marsha_runner.storage.outages import is_outage, outage_describe, outage_retry_after

from . import protocol
from .problems import RunnerRefusal, problem_response, runner_body

logger = logging.getLogger(__name__)


def runner_call(view):
    """POST only, CSRF-exempt; the parsed body as ``data``; a refusal as a problem document;
    a storage or database outage as a 503 problem with ``Retry-After`` (the runner retries:
    nothing was changed, its call can be made again as it was)."""

    @csrf_exempt
    @require_POST
    @functools.wraps(view)
    def wrapped(request, **kwargs):
        try:
            return view(request, runner_body(request), **kwargs)
        except RunnerRefusal as refusal:
            return problem_response(refusal)
        except Exception as err:
            if not is_outage(err):
                raise
            logger.warning(
                "Runner call %s: outage (%s), 503.", view.__name__, outage_describe(err)
            )
            response = problem_response(
                RunnerRefusal(503, "service_unavailable", "Briefly unavailable: retry.")
            )
            response["Retry-After"] = str(outage_retry_after())
            return response

    return wrapped


def _no_content():
    return HttpResponse(status=204)


@runner_call
def runner_register(request, data):
    runner = protocol.runner_register(
        registration_token=data.get("registrationToken"),
        name=data.get("name"),
        description=data.get("description"),
        version=data.get("version"),
        ip=get_client_ip(request),
    )
    return JsonResponse(
        {"id": str(runner.id), "name": runner.name, "runnerToken": runner.runnerToken}
    )


@runner_call
def runner_unregister(request, data):
    runner = protocol.runner_by_token(runner_token=data.get("runnerToken"))
    protocol.runner_unregister(runner=runner)
    return _no_content()


@runner_call
def runner_job_accept(request, data, job_uuid):
    job = protocol.runner_job_accept(
        runner_token=data.get("runnerToken"), job_uuid=job_uuid, ip=get_client_ip(request)
    )
    return JsonResponse({"job": RunnerJobSerializer(job).data})


def _job_call(data, job_uuid, request) -> dict:
    return {
        "runner_token": data.get("runnerToken"),
        "job_token": data.get("jobToken"),
        "job_uuid": job_uuid,
        "ip": get_client_ip(request),
    }


@runner_call
def runner_job_update(request, data, job_uuid):
    protocol.runner_job_update(**_job_call(data, job_uuid, request), progress=data.get("progress"))
    return _no_content()


@runner_call
def runner_job_success(request, data, job_uuid):
    files = {**data, **{key: request.FILES.get(key) for key in request.FILES}}
    protocol.runner_job_succeed(**_job_call(data, job_uuid, request), files=files)
    return _no_content()


@runner_call
def runner_job_error(request, data, job_uuid):
    protocol.runner_job_fail(**_job_call(data, job_uuid, request), message=data.get("message"))
    return _no_content()


@runner_call
def runner_job_abort(request, data, job_uuid):
    protocol.runner_job_abort(**_job_call(data, job_uuid, request), reason=data.get("reason"))
    return _no_content()


@runner_call
def runner_job_source(request, data, video_uuid, job_uuid):
    """302 to the source (a 301 would be cached; 307/308 would replay the POST)."""
    url = protocol.runner_job_source(
        runner_token=data.get("runnerToken"),
        job_token=data.get("jobToken"),
        job_uuid=job_uuid,
        video_uuid=video_uuid,
    )
    return HttpResponseRedirect(url)
