"""``manage.py cleanup_sources`` (cron): a shell around its operations service."""

from marsha_runner.operations.management.base import OperationsCommand
from marsha_runner.operations.services import sources_cleanup


class Command(OperationsCommand):
    help = (sources_cleanup.__doc__ or "").split("\n\n")[0].replace("\n", " ")

    def run(self, **options):
        return sources_cleanup(
            batch_size=options["batch_size"], dry_run=options["dry_run"]
        ).as_dict()
