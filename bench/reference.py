"""The minimal Django reference of the dispatch bench (issue 6): one async view.

It reads the JSON body and answers a constant job list, DEBUG off, no middleware, no
database. bench/dispatch.py serves it with the same uvicorn as marsha_runner:

    .venv/bin/uvicorn bench.reference:application --port 8101
"""

import json
import os
import uuid

from django.conf import settings

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench-reference",
        ALLOWED_HOSTS=["127.0.0.1", "localhost"],
        ROOT_URLCONF=__name__,
        MIDDLEWARE=[],
        INSTALLED_APPS=[],
        DATABASES={},
        USE_TZ=True,
    )

from django.core.asgi import get_asgi_application  # noqa: E402
from django.http import JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402
from django.views.decorators.http import require_POST  # noqa: E402

# As many jobs as the bench leaves pending in marsha_runner's table.
JOBS = [
    {
        "uuid": str(uuid.UUID(int=n)),
        "type": "vod-hls-transcoding",
        "payload": {
            "input": {"videoFileUrl": "http://bench/x"},
            "output": {"resolution": 240, "fps": 30},
        },
    }
    for n in range(int(os.environ.get("BENCH_REFERENCE_JOBS", "5")))
]


@require_POST
async def jobs_request(request):
    body = json.loads(request.body or b"{}")
    assert isinstance(body, dict)
    return JsonResponse({"availableJobs": JOBS})


urlpatterns = [path("api/v1/runners/jobs/request", jobs_request)]

application = get_asgi_application()
