"""``manage.py transcribe``: start transcription jobs for ready videos without a transcript."""

import uuid

from django.core.management.base import CommandError

from marsha_runner.operations.management.base import OperationsCommand
from marsha_runner.operations.transcription import videos_transcribe


class Command(OperationsCommand):
    help = (
        "Start a transcription job (whisper on a runner) for ready videos without a "
        "transcript: --video (repeatable), --limit N of them, or --all."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--video", action="append", default=[], help="Video id (repeatable).")
        parser.add_argument("--limit", type=int, help="At most this many videos.")
        parser.add_argument(
            "--all", action="store_true", help="Every ready video without a transcript."
        )

    def run(self, **options):
        videos, limit, all_videos = options["video"], options["limit"], options["all"]
        if limit is not None and all_videos:
            raise CommandError("--limit and --all cannot go together: choose one.")
        if videos and (limit is not None or all_videos):
            raise CommandError("--video names the videos: it takes no --limit or --all.")
        if not videos and limit is None and not all_videos:
            raise CommandError("Name videos with --video, or give --limit N or --all.")
        if limit is not None and limit < 1:
            raise CommandError("--limit must be at least 1.")
        try:
            video_ids = [uuid.UUID(v) for v in videos]
        except ValueError as err:
            raise CommandError(f"--video takes video ids (UUIDs): {err}") from None
        return videos_transcribe(
            video_ids=video_ids, limit=limit, all_videos=all_videos, dry_run=options["dry_run"]
        ).as_dict()
