"""``/metrics``, ``/healthz`` and ``/readyz``: outside authentication (``asgi.probe_routes``
sends them past the middleware); ``/metrics`` checks its own access (``access.py``)."""

import os

from django.http import HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.multiprocess import MultiProcessCollector

from .access import metrics_access_allowed
from .collectors import DatabaseCollector
from .probes import readiness


class _SingleProcess:
    """This process's own instruments (no PROMETHEUS_MULTIPROC_DIR) plus the database."""

    def collect(self):
        yield from REGISTRY.collect()
        yield from DatabaseCollector().collect()


def scrape_registry():
    """What a scrape reads: with ``PROMETHEUS_MULTIPROC_DIR``, every process's files added up
    (the uvicorn workers and the Celery workers of this host), plus the database gauges."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return _SingleProcess()
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    registry.register(DatabaseCollector())
    return registry


def _error(status: int, message: str, code: str) -> JsonResponse:
    return JsonResponse(
        {"errors": [{"field": None, "message": message, "code": code}]}, status=status
    )


@never_cache
def metrics(request):
    allowed = metrics_access_allowed(
        client_ip=request.META.get("REMOTE_ADDR"),
        authorization=request.META.get("HTTP_AUTHORIZATION"),
    )
    if not allowed:
        return _error(
            403,
            "Metrics are served to METRICS_ALLOWED_NETWORKS or with the METRICS_TOKEN bearer.",
            "permission_denied",
        )
    # The text format every Prometheus reads (2.x and 3.x); our names need no UTF-8 escaping.
    body = generate_latest(scrape_registry())
    return HttpResponse(body, content_type=CONTENT_TYPE_PLAIN_0_0_4)


@never_cache
def healthz(request):
    """Liveness: the process answers. No I/O: a database outage must not get it restarted."""
    return JsonResponse({"status": "ok"})


@never_cache
def readyz(request):
    """Readiness: 200 when the database, Redis and the storage answer in time, else 503
    naming what failed (take this process out of the load balancer, do not restart it)."""
    checks = readiness()
    failed = sorted(name for name, result in checks.items() if not result["ok"])
    body = {"status": "unavailable" if failed else "ready", "failed": failed, "checks": checks}
    return JsonResponse(body, status=503 if failed else 200)
