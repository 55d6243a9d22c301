"""``manage.py operations_crontab``: print the crontab of the operations commands."""

import sys

from django.core.management.base import BaseCommand

from marsha_runner.operations.schedule import LOG_DIR, crontab_lines


class Command(BaseCommand):
    help = (
        "Print the crontab running every operations command (the README shows this output; "
        "Celery beat runs the same table: CELERY_BEAT_SCHEDULE)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--manage", default="/app/manage.py", help="Path of manage.py.")
        parser.add_argument("--python", default="python", help="The Python to run it with.")
        parser.add_argument("--log-dir", default=LOG_DIR, help="Where the JSON summaries go.")

    def handle(self, *args, **options):
        for line in crontab_lines(
            manage=options["manage"], python=options["python"], log_dir=options["log_dir"]
        ):
            self.stdout.write(line)
        if sys.stdout.isatty():
            self.stderr.write("Install with: crontab -e (as the user running the app).")
