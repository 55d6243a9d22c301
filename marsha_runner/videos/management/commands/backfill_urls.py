"""``manage.py backfill_urls``: recompute the persisted URLs of videos (after a change of
public domain or storage settings). Idempotent: a second run changes nothing."""

import json
import time
import uuid

from django.core.management.base import BaseCommand, CommandError

from marsha_runner.videos.backfill import videos_backfill_urls
from marsha_runner.videos.constants import StorageLocation, TranscodePipeline, UploadState
from marsha_runner.videos.models import Video

NONE = "none"  # --location none: the local filesystem (null in the database)


class Command(BaseCommand):
    help = "Recompute the persisted URLs of all or selected videos, in batches."

    def add_arguments(self, parser):
        parser.add_argument(
            "--video", action="append", default=[], type=uuid.UUID, help="A video id (repeat)."
        )
        parser.add_argument("--pipeline", choices=TranscodePipeline.values)
        parser.add_argument("--location", choices=[*StorageLocation.values, NONE])
        parser.add_argument("--state", choices=UploadState.values)
        parser.add_argument("--batch-size", type=int, default=1000)
        parser.add_argument(
            "--dry-run", action="store_true", help="Count the videos whose URLs would change."
        )
        parser.add_argument("--json", action="store_true", help="A JSON summary (cron).")

    def handle(self, *args, **options):
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1.")
        videos = Video.objects.all()
        if options["video"]:
            videos = videos.filter(id__in=options["video"])
        if options["pipeline"]:
            videos = videos.filter(transcode_pipeline=options["pipeline"])
        if options["location"] == NONE:
            videos = videos.filter(storage_location__isnull=True)
        elif options["location"]:
            videos = videos.filter(storage_location=options["location"])
        if options["state"]:
            videos = videos.filter(upload_state=options["state"])
        started = time.monotonic()
        try:
            summary = videos_backfill_urls(
                videos=videos, batch_size=options["batch_size"], dry_run=options["dry_run"]
            )
        except Exception as err:  # noqa: BLE001  (a bad id, a storage down: say it, exit 1)
            raise CommandError(f"backfill_urls failed: {err}") from err
        summary["seconds"] = round(time.monotonic() - started, 3)
        if options["json"]:
            self.stdout.write(json.dumps(summary))
        else:
            verb = "would change" if summary["dry_run"] else "changed"
            self.stdout.write(
                f"{summary['videos']} videos read, {summary['changed']} {verb} "
                f"in {summary['seconds']} s."
                + (
                    f" {summary['raced']} written meanwhile by another process, left as is."
                    if summary["raced"]
                    else ""
                )
            )
