"""``manage.py seed_legacy_videos``: a few legacy AWS videos on a dev machine (``make run``)."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from marsha_runner.videos.legacy_seed import legacy_video_seed


class Command(BaseCommand):
    help = "Seed legacy AWS videos whose files ffmpeg makes in the legacy storage (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--count", type=int, default=2)
        parser.add_argument("--seconds", type=float, default=4)
        parser.add_argument(
            "--force", action="store_true", help="Allowed with DEBUG off (writes to the bucket)."
        )

    def handle(self, *args, **options):
        if not settings.DEBUG and not options["force"]:
            raise CommandError("DEBUG is off: this would write test files to the legacy bucket.")
        if options["count"] < 0 or options["seconds"] <= 0:
            raise CommandError("--count must be positive and --seconds above 0.")
        for number in range(1, options["count"] + 1):
            try:
                video, created = legacy_video_seed(
                    title=f"Legacy AWS video {number}", seconds=options["seconds"]
                )
            except Exception as err:  # noqa: BLE001  (ffmpeg or a storage failure: say which)
                raise CommandError(f"Could not seed legacy video {number}: {err}") from err
            state = "created" if created else "exists"
            self.stdout.write(f"{video.pk} {state}: {video.urls['manifests']['hls']}")
