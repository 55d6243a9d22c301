"""``manage.py migrate_to_scaleway``: copy legacy AWS media to Scaleway, prove it, switch.

Stop it any time and run it again: verified objects are not copied twice, and no video is
switched before every one of its objects is verified.
"""

import json
import sys
import uuid

from django.core.management.base import BaseCommand, CommandError

from marsha_runner.migration.services import Progress, videos_migrate_to_scaleway


def _size(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1024 or unit == "GB":
            return f"{count:.1f} {unit}" if unit != "B" else f"{int(count)} B"
        count /= 1024
    return str(count)


class Command(BaseCommand):
    help = (
        "Copy every object of legacy AWS videos to the Scaleway bucket under aws/, verify, switch."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--video", action="append", default=[], type=uuid.UUID, help="A video id (repeat)."
        )
        parser.add_argument("--limit", type=int, help="At most this many videos.")
        parser.add_argument(
            "--concurrency", type=int, help="Parallel object copies (MIGRATION_CONCURRENCY)."
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
        parser.add_argument("--json", action="store_true", help="A JSON summary (cron).")

    def handle(self, *args, **options):
        for name in ("limit", "concurrency", "batch_size"):
            if options[name] is not None and options[name] < 1:
                raise CommandError(f"--{name.replace('_', '-')} must be at least 1.")
        bar = self._progress(quiet=options["json"])
        try:
            summary = videos_migrate_to_scaleway(
                video_ids=[str(v) for v in options["video"]] or None,
                limit=options["limit"],
                batch_size=options["batch_size"],
                concurrency=options["concurrency"],
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

    def _progress(self, *, quiet: bool):
        """tqdm with bytes and rate on a TTY; one plain line per video otherwise."""
        command = self

        class Bar:
            bar = None

            def __init__(self):
                self.progress = Progress(
                    on_video=self.video, on_bytes=self.bytes, on_done=self.done
                )

            def video(self, video_id, objects, size):
                if quiet:
                    return
                if sys.stderr.isatty():
                    from tqdm import tqdm

                    self.close()
                    self.bar = tqdm(
                        total=size,
                        unit="B",
                        unit_scale=True,
                        unit_divisor=1024,
                        desc=f"{video_id[:8]} ({objects} objects)",
                        file=sys.stderr,
                    )
                else:
                    command.stderr.write(
                        f"{video_id}: {objects} objects, {_size(size)}", style_func=str
                    )

            def bytes(self, count):
                if self.bar is not None:
                    self.bar.update(count)

            def done(self, result):
                if quiet:
                    return
                self.close()
                line = (
                    f"{result.video_id}: {result.status}"
                    f"{' (' + result.reason + ')' if result.reason else ''}; "
                    f"{result.objects_copied} copied, {result.objects_skipped} already verified"
                )
                command.stderr.write(line, style_func=str)

            def close(self):
                if self.bar is not None:
                    self.bar.close()
                    self.bar = None

        return Bar()

    def _report(self, summary: dict):
        if summary["dry_run"]:
            self.stdout.write(
                f"Dry run: {summary['videos']} video(s), {summary['objects']} objects "
                f"({_size(summary['bytes'])}); to copy: {summary['objects_copied']} objects "
                f"({_size(summary['bytes_copied'])}). Nothing written."
            )
            return
        deleted = summary["sources_deleted"]
        self.stdout.write(
            f"{summary['migrated']} migrated, {summary['skipped']} skipped, "
            f"{summary['failed']} failed; {summary['objects_copied']} objects copied "
            f"({_size(summary['bytes_copied'])}), {summary['objects_skipped']} already verified; "
            f"{summary['seconds']} s, {_size(summary['bytes_per_second'])}/s"
            + (f"; {deleted} sources deleted" if deleted else "")
        )
        for item in summary["skips"]:
            self.stdout.write(f"skipped {item['video']}: {item['reason']}")
        for item in summary["failures"]:
            self.stdout.write(f"FAILED {item['video']}: {item['reason']}")
