"""``manage.py migrate_to_scaleway``: copy legacy AWS media to Scaleway, prove it, switch.

Stop it any time and run it again: verified objects and parts are not copied twice, and no
video is switched before every one of its objects is verified. ``--fan-out`` hands each video
to a Celery task instead (workers on several machines); ``--status`` reads the progress of
every run and worker.
"""

import gc
import json
import uuid

from django.core.management.base import BaseCommand, CommandError

from marsha_runner.migration.progress_bar import ProgressBar, size_text
from marsha_runner.migration.run import videos_migrate_to_scaleway, videos_migration_fan_out
from marsha_runner.migration.selectors import migration_progress


class Command(BaseCommand):
    help = (
        "Copy every object of legacy AWS videos to the Scaleway bucket under aws/, verify, switch."
    )
    # The system checks import every URLconf and view (seconds of start on a loaded machine,
    # for each cron run and each process of a migration); `manage.py check` runs them.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument(
            "--video", action="append", default=[], type=uuid.UUID, help="A video id (repeat)."
        )
        parser.add_argument("--limit", type=int, help="At most this many videos.")
        parser.add_argument(
            "--concurrency", type=int, help="Objects copied at once (MIGRATION_CONCURRENCY)."
        )
        parser.add_argument(
            "--videos-at-once", type=int, help="Videos in flight (MIGRATION_VIDEOS_AT_ONCE)."
        )
        parser.add_argument(
            "--max-seconds",
            type=float,
            help="Stop cleanly after this many seconds (cron): nothing new is started, large "
            "uploads are left to be continued by the next run.",
        )
        parser.add_argument(
            "--bwlimit", type=int, help="Bytes per second at most (MIGRATION_BANDWIDTH)."
        )
        parser.add_argument("--batch-size", type=int, default=100, help="Videos read at once.")
        parser.add_argument(
            "--delete-source",
            action="store_true",
            help="Delete each source object once the video is verified and switched.",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Say what would be copied; write nothing."
        )
        parser.add_argument(
            "--fan-out",
            action="store_true",
            help="Enqueue one Celery task per video instead of copying here.",
        )
        parser.add_argument(
            "--status", action="store_true", help="Progress over every run and worker."
        )
        parser.add_argument("--json", action="store_true", help="A JSON summary (cron).")

    def handle(self, *args, **options):
        for name in ("limit", "concurrency", "batch_size", "videos_at_once", "bwlimit"):
            if options[name] is not None and options[name] < 1:
                raise CommandError(f"--{name.replace('_', '-')} must be at least 1.")
        if options["max_seconds"] is not None and options["max_seconds"] <= 0:
            raise CommandError("--max-seconds must be positive.")
        if options["status"]:
            return self._status(as_json=options["json"])
        video_ids = [str(v) for v in options["video"]] or None
        if options["fan_out"]:
            return self._fan_out(video_ids, options)
        # What Django, the models and boto3 left in memory lives as long as the process: frozen,
        # the collector no longer walks it during the copy nor once more at exit (0.1 s of a
        # run's CPU; the ASGI app does the same at startup).
        gc.freeze()
        bar = ProgressBar(self.stderr, quiet=options["json"])
        try:
            summary = videos_migrate_to_scaleway(
                video_ids=video_ids,
                limit=options["limit"],
                batch_size=options["batch_size"],
                concurrency=options["concurrency"],
                videos_at_once=options["videos_at_once"],
                max_seconds=options["max_seconds"],
                bandwidth=options["bwlimit"],
                delete_source=options["delete_source"],
                dry_run=options["dry_run"],
                progress=bar.progress,
            )
        finally:
            bar.close()
        if options["json"]:
            self.stdout.write(json.dumps(summary))
        else:
            self._report(summary)
        if summary["failed"]:
            raise CommandError(f"{summary['failed']} video(s) failed.", returncode=1)

    def _fan_out(self, video_ids, options):
        if options["dry_run"]:
            raise CommandError("--fan-out has no --dry-run: run without --fan-out to preview.")
        result = videos_migration_fan_out(
            video_ids=video_ids, limit=options["limit"], delete_source=options["delete_source"]
        )
        if options["json"]:
            self.stdout.write(json.dumps(result))
        else:
            self.stdout.write(f"{result['queued']} video(s) enqueued; see --status.")
        if result["error"]:
            raise CommandError(result["error"], returncode=1)

    def _status(self, *, as_json: bool):
        status = migration_progress()
        if as_json:
            self.stdout.write(json.dumps(status))
            return
        eta = status["eta_seconds"]
        self.stdout.write(
            f"videos: {status['migrated']}/{status['videos']} migrated, {status['running']} "
            f"running, {status['failed']} failed, {status['pending']} pending "
            f"({status['queued']} queued)\n"
            f"objects: {status['objects_done']}/{status['objects']} of the listed videos; "
            f"{size_text(status['bytes_done'])} of {size_text(status['bytes'])}\n"
            f"rate: {size_text(status['bytes_per_second'])}/s; "
            f"ETA: {f'{eta // 3600}h{eta % 3600 // 60:02d}m' if eta is not None else 'unknown'}"
        )
        for error in status["last_errors"]:
            self.stdout.write(f"FAILED {error['video']} ({error['on']}): {error['reason']}")

    def _report(self, summary: dict):
        if summary["dry_run"]:
            self.stdout.write(
                f"Dry run: {summary['videos']} video(s), {summary['objects']} objects "
                f"({size_text(summary['bytes'])}); to copy: {summary['objects_copied']} objects "
                f"({size_text(summary['bytes_copied'])}). Nothing written."
            )
            return
        deleted = summary["sources_deleted"]
        self.stdout.write(
            f"{summary['migrated']} migrated, {summary['skipped']} skipped, "
            f"{summary['failed']} failed, {summary['stopped']} stopped; "
            f"{summary['objects_copied']} objects copied "
            f"({size_text(summary['bytes_copied'])}), {summary['objects_skipped']} already "
            f"verified; {summary['seconds']} s, {size_text(summary['bytes_per_second'])}/s"
            + (f"; {deleted} sources deleted" if deleted else "")
        )
        for item in summary["skips"]:
            self.stdout.write(f"skipped {item['video']}: {item['reason']}")
        for item in summary["failures"]:
            self.stdout.write(f"FAILED {item['video']}: {item['reason']}")
