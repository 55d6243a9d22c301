"""``manage.py prune_runner_jobs`` (cron): a shell around its operations service."""

from marsha_runner.operations.management.base import OperationsCommand
from marsha_runner.operations.services import runner_jobs_prune


class Command(OperationsCommand):
    help = (runner_jobs_prune.__doc__ or "").split("\n\n")[0].replace("\n", " ")

    def run(self, **options):
        return runner_jobs_prune(
            batch_size=options["batch_size"], dry_run=options["dry_run"]
        ).as_dict()
