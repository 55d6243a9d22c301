"""What the videos app tells the metrics: a transcoding's outcome and its times (issue 20).

Measured from ``upload_ended_on`` (set by upload-ended) to the moment the video becomes
ready, and to ``playable_on`` (the first rendition served, issue 18; a video without it was
first playable when ready). Only user uploads are measured: staff re-transcodings
(``processing_by_staff``) wait behind every upload by design and would blur the figure.
Recorded after the transaction commits.
"""

from functools import partial

from django.db import transaction
from django.utils import timezone

from marsha_runner.telemetry.instruments import (
    video_outcome_record,
    video_playable_time_record,
    video_ready_time_record,
)

from .models import Video


def video_outcome_observe(video: Video, *, ready: bool) -> None:
    """``video`` just became ready (``ready``) or errored, and was saved: its ``updated_on``
    is the moment, as the row records it."""
    now = video.updated_on or timezone.now()
    transaction.on_commit(partial(video_outcome_record, ready=ready))
    ended = video.upload_ended_on
    if ended is None or video.processing_by_staff:
        return
    if ready:
        transaction.on_commit(partial(video_ready_time_record, upload_ended=ended, ready=now))
    playable = video.playable_on or (now if ready else None)
    if playable is not None and playable >= ended:
        record = partial(video_playable_time_record, upload_ended=ended, playable=playable)
        transaction.on_commit(record)
