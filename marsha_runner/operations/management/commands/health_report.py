"""``manage.py health_report`` (cron: every few minutes, or by hand). Read only."""

from marsha_runner.operations.management.base import OperationsCommand
from marsha_runner.operations.selectors import queue_health
from marsha_runner.operations.services import HealthThresholds, health_alerts


class Command(OperationsCommand):
    help = (
        "Pending and processing jobs, oldest pending age, errored in 24 h, runners online and "
        "offline, videos processing and in error. Exit 2 when a threshold is crossed."
    )
    writes = False

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--max-pending-jobs", type=int, help="HEALTH_MAX_PENDING_JOBS")
        parser.add_argument(
            "--max-oldest-pending-age", type=int, help="Seconds; HEALTH_MAX_OLDEST_PENDING_AGE"
        )
        parser.add_argument("--max-errored-jobs-24h", type=int, help="HEALTH_MAX_ERRORED_JOBS_24H")
        parser.add_argument("--min-runners-online", type=int, help="HEALTH_MIN_RUNNERS_ONLINE")

    def run(self, **options):
        thresholds = HealthThresholds.from_settings(
            max_pending_jobs=options["max_pending_jobs"],
            max_oldest_pending_age=options["max_oldest_pending_age"],
            max_errored_jobs_24h=options["max_errored_jobs_24h"],
            min_runners_online=options["min_runners_online"],
        )
        health = queue_health()
        return {
            "command": "health_report",
            "health": health.as_dict(),
            "thresholds": thresholds.__dict__,
            "needs_attention": health_alerts(health=health, thresholds=thresholds),
        }

    def text(self, summary):
        lines = [f"{key.replace('_', ' ')}: {value}" for key, value in summary["health"].items()]
        return lines + [f"ALERT: {alert}" for alert in summary["needs_attention"]]
