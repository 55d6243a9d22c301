"""Our HLS job handler: the library's, with its bugs fixed around it (docs/design.md#library-wall).

- jobs are created without an inline ping: runners are pinged on commit, so they never ask
  for a job they cannot see yet;
- a parent that fails for good leaves its children PARENT_ERRORED (never pending);
- abort counts toward ``TRANSCODING_RUNNER_MAX_FAILURE``;
- completion does not lose a rendition when ffprobe omits ``format.size`` or a ``profile``;
- the host is told after commit, by the job tree, when the transcoding is over.
"""

import logging
import os
import re

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone
from django_peertube_runner_connector.models import (
    RunnerJob,
    RunnerJobState,
    Video,
    VideoFile,
    VideoJobInfoColumnType,
    VideoStreamingPlaylist,
)
from django_peertube_runner_connector.utils.ffprobe import (
    build_file_metadata,
    get_video_stream_fps,
)
from django_peertube_runner_connector.utils.files import (
    generate_hls_video_filename,
    get_hls_resolution_playlist_filename,
    get_video_directory,
)
from django_peertube_runner_connector.utils.job_handlers.vod_hls_transcoding_job_handler import (
    VODHLSTranscodingJobHandler,
)

from marsha_runner.storage import storage_replace, video_storage
from marsha_runner.storage.outages import Unreachable, outage_describe, storage_outage

from .callbacks import transcoding_ended_notify
from .observe import runner_job_finished_observe
from .priority import JobPriority
from .probe import probe_duration, probe_stored
from .requeue import runner_job_abort, runner_job_to_pending
from .selectors import runner_job_video_uuid
from .socket import runners_ping_on_commit

logger = logging.getLogger(__name__)

# Any file name (with or without a directory) ending in -fragmented.mp4, as the runner names
# its output; the library's regex only knows "<uuid>-<res>-fragmented.mp4".
FRAGMENTED_MP4_RE = re.compile(r"(?:[^\s\",/#]*/)?[^\s\",/#]+-fragmented\.mp4", re.IGNORECASE)
# Terminal failure states: the children of such a job never run.
FAILED_STATES = (RunnerJobState.ERRORED, RunnerJobState.PARENT_ERRORED)


def rendition_file_record(*, video, playlist, resolution: int, key: str, probe: dict):
    """The library's row of one stored rendition (a runner's result, or a rendition a
    missing-renditions transcoding keeps), from its ffprobe."""
    return VideoFile.objects.create(
        video=video,
        streamingPlaylist=playlist,
        resolution=resolution,
        filename=key,
        extname=".mp4",
        size=int(probe["format"]["size"]),
        fps=get_video_stream_fps(probe),
        metadata=build_file_metadata(probe),
    )


class HLSTranscodingJobHandler(VODHLSTranscodingJobHandler):
    """VOD HLS jobs, hardened; created in the priority class given (issue 18), where the
    library writes 0 for every job."""

    priority = JobPriority.UPLOAD

    ping = True  # runners pinged on commit when a job is created pending

    def __init__(self, *, priority: int | None = None, ping: bool = True):
        if priority is not None:
            self.priority = priority
        self.ping = ping

    def create_runner_job(
        self,
        domain,
        job_type,
        job_uuid,
        payload,
        private_payload,
        priority,
        depends_on_runner_job,
    ):
        """Like the library's, but the ping waits for the commit
        (docs/design.md#pings-before-commit) and the job gets this handler's priority class
        (the library's ``priority`` argument is always 0)."""
        runner_job = RunnerJob.objects.create(
            type=job_type,
            domain=domain,
            payload=payload,
            privatePayload=private_payload,
            uuid=job_uuid,
            state=(
                RunnerJobState.WAITING_FOR_PARENT_JOB
                if depends_on_runner_job
                else RunnerJobState.PENDING
            ),
            dependsOnRunnerJob=depends_on_runner_job,
            priority=int(self.priority),
        )
        if runner_job.state == RunnerJobState.PENDING:
            if self.ping:
                runners_ping_on_commit()
        return runner_job

    # --- completion ---------------------------------------------------------------------------

    def complete(self, runner_job: RunnerJob, result_payload):
        """Completed → waiting children pending (ping on commit); failed → children
        PARENT_ERRORED. Then the host is told after commit if the transcoding is over.

        A storage or database outage is not a failure: it propagates with the job left
        ``completing``, and the caller keeps the result for later (``deferred.py``); storing
        a rendition twice writes the same keys and one row.
        """
        runner_job.state = RunnerJobState.COMPLETING
        runner_job.save()
        try:
            self.specific_complete(runner_job, result_payload)
            runner_job.state = RunnerJobState.COMPLETED
        except Exception as err:
            if storage_outage(err, video_storage()):
                raise Unreachable(outage_describe(err)) from err
            logger.exception("Completion of runner job %s failed.", runner_job.uuid)
            runner_job.state = RunnerJobState.ERRORED
            runner_job.error = f"Completion failed: {err}"[:2000]
        runner_job.progress = None
        runner_job.finishedAt = timezone.now()
        runner_job.save()
        runner_job_finished_observe(runner_job)

        if runner_job.state == RunnerJobState.COMPLETED:
            affected = runner_job.children.filter(
                state=RunnerJobState.WAITING_FOR_PARENT_JOB
            ).update(state=RunnerJobState.PENDING)
            if affected:
                runners_ping_on_commit()
        else:
            self._children_parent_errored(runner_job)
        transcoding_ended_notify(video_uuid=runner_job_video_uuid(runner_job))

    def specific_complete(self, runner_job: RunnerJob, result_payload):
        """Store the rendition under our names and record it.

        Storage writes and the probe come first, outside any lock (the keys are this
        rendition's own); the transaction then locks the video row and writes rows only. The
        master playlist is rewritten after commit, listing the renditions stored (callbacks.py).
        """
        video_uuid = runner_job_video_uuid(runner_job)
        video = Video.objects.filter(uuid=video_uuid).first()
        if video is None:
            logger.info("Video %s is gone; dropping the rendition.", video_uuid)
            return
        resolution = int(runner_job.payload["output"]["resolution"])
        video_key = get_video_directory(
            video, generate_hls_video_filename(resolution, video.baseFilename)
        )
        playlist_key = get_hls_resolution_playlist_filename(video_key)

        storage_replace(video_storage(), video_key, result_payload["video_file"])
        raw = result_payload["resolution_playlist_file"].read()
        text = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
        text = FRAGMENTED_MP4_RE.sub(os.path.basename(video_key), text)
        storage_replace(
            video_storage(), playlist_key, ContentFile(text.encode(), name="playlist.m3u8")
        )
        probe = probe_stored(key=video_key)

        # Rows only from here: the video row is locked so two renditions completing at once
        # both end up in it.
        with transaction.atomic():
            video = Video.objects.select_for_update().filter(uuid=video_uuid).first()
            if video is None:
                logger.info("Video %s is gone; dropping the rendition.", video_uuid)
                return
            playlist, _ = VideoStreamingPlaylist.objects.get_or_create(video=video)
            VideoFile.objects.filter(video=video, filename=video_key).delete()
            rendition_file_record(
                video=video, playlist=playlist, resolution=resolution, key=video_key, probe=probe
            )
            if not video.duration:
                video.duration = round(probe_duration(probe) or 0) or None
                video.save(update_fields=["duration", "updatedAt"])
            # The library's bookkeeping only: its move to the next state would publish the video
            # at the first rendition; the state moves once, when the host is told (callbacks.py).
            video.decrease_job_info(VideoJobInfoColumnType.PENDING_TRANSCODE)
        logger.info("Runner job %s stored %sp of %s.", runner_job.uuid, resolution, video.uuid)

    # --- failures -----------------------------------------------------------------------------

    def specific_error(self, runner_job: RunnerJob, message: str, next_state):
        """The library's bookkeeping without its move to TRANSCODING_FAILED: that move is the
        claim of the one caller that tells the host (callbacks.transcoding_outcome_claim)."""
        if next_state == RunnerJobState.ERRORED:
            self._pending_transcode_decrease(runner_job)

    def specific_cancel(self, runner_job: RunnerJob):
        """Likewise for a cancel: the job tree decides when the transcoding is over."""
        self._pending_transcode_decrease(runner_job)
        transcoding_ended_notify(video_uuid=runner_job_video_uuid(runner_job))

    @staticmethod
    def _pending_transcode_decrease(runner_job: RunnerJob):
        video = Video.objects.filter(uuid=runner_job_video_uuid(runner_job)).first()
        if video is not None:
            video.decrease_job_info(VideoJobInfoColumnType.PENDING_TRANSCODE)

    def _children_parent_errored(self, runner_job: RunnerJob):
        children = runner_job.children.filter(
            state__in=(RunnerJobState.WAITING_FOR_PARENT_JOB, RunnerJobState.PENDING)
        )
        for child in children:
            self.error(child, "Parent error", from_parent=True)

    def error(self, runner_job: RunnerJob, message: str, from_parent: bool = False):
        """Retry until ``TRANSCODING_RUNNER_MAX_FAILURE``; a child failed from its parent is
        always PARENT_ERRORED, and so are the children of a job errored for good."""
        if from_parent:
            next_state = RunnerJobState.PARENT_ERRORED
        elif runner_job.failures >= settings.TRANSCODING_RUNNER_MAX_FAILURE:
            next_state = RunnerJobState.ERRORED
        else:
            next_state = RunnerJobState.PENDING

        self.specific_error(runner_job, message, next_state)

        if next_state == RunnerJobState.PENDING:
            runner_job_to_pending(job=runner_job, failures=runner_job.failures)
        else:
            runner_job.error = message
            runner_job.set_to_error_or_cancel(next_state)
            runner_job_finished_observe(runner_job)
            self._children_parent_errored(runner_job)
        transcoding_ended_notify(video_uuid=runner_job_video_uuid(runner_job))

    def abort(self, runner_job: RunnerJob):
        """Back to pending for another runner, unless it failed too often (counted)."""
        runner_job_abort(self, runner_job)
