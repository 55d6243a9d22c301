"""The queue health panel at the top of the admin index (the health report's selector)."""

from datetime import datetime

from django import template
from django.urls import reverse

from marsha_runner.admin_kit import short_time
from marsha_runner.operations.selectors import queue_health

register = template.Library()
STATE = "upload_state__exact"


def _age(seconds):
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02} min" if hours else f"{minutes} min {secs:02} s"


@register.inclusion_tag("operations/health_panel.html", takes_context=True)
def health_panel(context):
    """Each figure links to the list it counts (filtered)."""
    request = context.get("request")
    if request is None or not request.user.is_staff:
        return {"cells": []}
    health = queue_health()
    jobs = reverse("admin:runners_runnerjob_changelist")
    runners = reverse("admin:runners_runner_changelist")
    videos = reverse("admin:videos_video_changelist")
    cells = [
        ("pending jobs", health.jobs_pending, f"{jobs}?state__exact=1"),
        ("processing jobs", health.jobs_processing, f"{jobs}?state__exact=2"),
        ("errored jobs (24 h)", health.jobs_errored_24h, f"{jobs}?state__exact=4"),
        ("oldest pending", _age(health.oldest_pending_age), f"{jobs}?state__exact=1&o=11"),
        ("runners online", health.runners_online, f"{runners}?online=yes"),
        ("runners offline", health.runners_offline, f"{runners}?online=no"),
        ("videos processing", health.videos_processing, f"{videos}?{STATE}=processing"),
        ("videos in error", health.videos_error, f"{videos}?{STATE}=error"),
    ]
    measured = datetime.fromisoformat(health.measured_on)  # ISO for the JSON report
    return {"cells": cells, "measured_on": short_time(measured)}
