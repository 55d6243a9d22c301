"""``manage.py runners_watchdog`` (cron: every minute). See ``services.runners_watchdog``."""

from marsha_runner.operations.management.base import OperationsCommand
from marsha_runner.operations.services import runners_watchdog


class Command(OperationsCommand):
    help = (
        "Stalled runner jobs back to pending (or errored at the max failures), jobs of "
        "unregistered runners requeued, children of failed parents parent-errored, finished "
        "transcodings applied, lost launches enqueued again. Exit 2 when something failed "
        "for good."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument(
            "--stalled-timeout",
            type=int,
            help="Seconds without an update before a processing job is stalled "
            "(default: RUNNERS_STALLED_JOB_TIMEOUT).",
        )

    def run(self, **options):
        return runners_watchdog(
            stalled_timeout=options["stalled_timeout"],
            batch_size=options["batch_size"],
            dry_run=options["dry_run"],
        ).as_dict()
