"""``manage.py purge_stale_uploads`` (cron): a shell around its operations service."""

from marsha_runner.operations.management.base import OperationsCommand
from marsha_runner.operations.services import stale_uploads_purge


class Command(OperationsCommand):
    help = (stale_uploads_purge.__doc__ or "").split("\n\n")[0].replace("\n", " ")

    def run(self, **options):
        return stale_uploads_purge(
            batch_size=options["batch_size"], dry_run=options["dry_run"]
        ).as_dict()
