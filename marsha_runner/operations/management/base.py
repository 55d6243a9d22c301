"""The shape every cron command shares: ``--dry-run``, ``--json``, ``--batch-size``, exit 2.

A command parses its options, calls one service of ``marsha_runner.operations.services`` and
prints its report: text for people, one JSON object with ``--json`` for cron and monitors.
It exits 2 (a ``CommandError``) when the report says a human is needed.
"""

import json

from django.core.management.base import BaseCommand, CommandError

NEEDS_ATTENTION = 2


class OperationsCommand(BaseCommand):
    writes = True  # commands that only read take no --dry-run
    batch_size = 500

    def add_arguments(self, parser):
        if self.writes:
            parser.add_argument(
                "--dry-run", action="store_true", help="Say what would be done; write nothing."
            )
            parser.add_argument(
                "--batch-size",
                type=int,
                default=self.batch_size,
                help=f"Rows handled per run or per batch (default {self.batch_size}).",
            )
        parser.add_argument(
            "--json", action="store_true", help="Print one JSON object (for cron, monitors)."
        )

    def run(self, **options):
        """Call the service; return a dict with at least ``needs_attention`` (a list)."""
        raise NotImplementedError

    def text(self, summary: dict) -> list[str]:
        """Lines for people (default: the counts)."""
        prefix = "Dry run, nothing written. Would have: " if summary.get("dry_run") else ""
        counts = summary.get("counts") or {}
        if not counts:
            return [f"{prefix}nothing to do."]
        return [f"{prefix}{key.replace('_', ' ')}: {value}" for key, value in counts.items()]

    def handle(self, *args, **options):
        if self.writes and options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1.")
        summary = self.run(**options)
        if options["json"]:
            self.stdout.write(json.dumps(summary, default=str, sort_keys=True))
        else:
            for line in self.text(summary):
                self.stdout.write(line)
        attention = summary.get("needs_attention") or []
        if attention:
            raise CommandError(
                "Needs attention: " + "; ".join(str(a) for a in attention),
                returncode=NEEDS_ATTENTION,
            )
