"""``manage.py seed_runner``: the registration token and a pre-registered runner.

Stdout carries only ``KEY=value`` lines (REGISTRATION_TOKEN, RUNNER_NAME, RUNNER_TOKEN) so
scripts can read them; everything meant for people goes to stderr.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from marsha_runner.runners.tokens import runner_seed, runner_seed_rotate


class Command(BaseCommand):
    help = (
        "Create (or leave as is) the runner registration token and a pre-registered runner "
        "whose token matches env.d/peertube_runner. Idempotent. Prints KEY=value lines."
    )
    # The dev-token check (runners.E002) must not block the command that fixes it.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument(
            "--registration-token",
            help="Registration token (default: PEERTUBE_RUNNER_REGISTRATION_TOKEN).",
        )
        parser.add_argument(
            "--runner-name",
            help="Name of the pre-registered runner (default: PEERTUBE_RUNNER_NAME).",
        )
        parser.add_argument(
            "--runner-token", help="Its runner token (default: PEERTUBE_RUNNER_TOKEN)."
        )
        parser.add_argument(
            "--rotate",
            action="store_true",
            help="Replace every registration token by a fresh one and, with --runner-name, "
            "that runner's token too; prints the new values once.",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Write nothing; say what would change."
        )

    def handle(self, *args, **options):
        dry_run = options["dry_run"]
        try:
            if options["rotate"]:
                if options["registration_token"] or options["runner_token"]:
                    raise CommandError(
                        "--rotate makes fresh tokens: it does not take --registration-token "
                        "or --runner-token."
                    )
                result = runner_seed_rotate(runner_name=options["runner_name"], dry_run=dry_run)
            else:
                result = runner_seed(
                    registration_token=options["registration_token"]
                    or settings.PEERTUBE_RUNNER_REGISTRATION_TOKEN,
                    runner_name=options["runner_name"] or settings.PEERTUBE_RUNNER_NAME,
                    runner_token=options["runner_token"] or settings.PEERTUBE_RUNNER_TOKEN,
                    dry_run=dry_run,
                )
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None

        prefix = "Dry run, nothing written. Would have: " if dry_run else ""
        for change in result.changes or ("nothing to change",):
            self.stderr.write(f"{prefix}{change}.")
        if dry_run:
            return
        self.stdout.write(f"REGISTRATION_TOKEN={result.registration_token}")
        if result.runner_name:
            self.stdout.write(f"RUNNER_NAME={result.runner_name}")
            self.stdout.write(f"RUNNER_TOKEN={result.runner_token}")
        if options["rotate"]:
            self.stderr.write("These tokens are shown once: store them now.")
