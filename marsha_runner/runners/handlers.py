"""Our HLS job handler: the library's, with its bugs of DESIGN §7.3-§7.8 fixed around it.

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
    VideoStreamingPlaylist,
)
from django_peertube_runner_connector.storage import video_storage
from django_peertube_runner_connector.utils.ffprobe import (
    build_file_metadata,
    get_video_stream_fps,
)
from django_peertube_runner_connector.utils.files import (
    generate_hls_video_filename,
    get_hls_resolution_playlist_filename,
    get_video_directory,
)
from django_peertube_runner_connector.utils.job_handlers.utils import on_transcoding_ended
from django_peertube_runner_connector.utils.job_handlers.vod_hls_transcoding_job_handler import (
    VODHLSTranscodingJobHandler,
)
from django_peertube_runner_connector.utils.transcoding.codecs import (
    get_audio_stream_codec,
    get_video_stream_codec,
)

from marsha_runner.storage import storage_replace

from .callbacks import transcoding_ended_notify
from .probe import probe_duration, probe_stored
from .selectors import runner_job_video_uuid
from .socket import runners_ping

logger = logging.getLogger(__name__)

# Any file name (with or without a directory) ending in -fragmented.mp4, as the runner names
# its output; the library's regex only knows "<uuid>-<res>-fragmented.mp4".
FRAGMENTED_MP4_RE = re.compile(r"(?:[^\s\",/#]*/)?[^\s\",/#]+-fragmented\.mp4", re.IGNORECASE)
# Terminal failure states: the children of such a job never run.
FAILED_STATES = (RunnerJobState.ERRORED, RunnerJobState.PARENT_ERRORED)


def _ping_on_commit():
    transaction.on_commit(runners_ping)


def probe_normalized(*, key: str) -> dict:
    """``probe_stored`` with the fields the library's codec helper indexes blindly defaulted
    (DESIGN §7.8), so no KeyError loses a rendition."""
    probe = probe_stored(key=key)
    for stream in probe["streams"]:
        if stream.get("codec_type") == "video":
            stream.setdefault("profile", "High")
            stream.setdefault("level", 31)
            stream.setdefault("codec_tag_string", "avc1")
    return probe


def master_playlist_write(*, video: Video, playlist: VideoStreamingPlaylist) -> str | None:
    """Write ``master.m3u8`` from the stored renditions (BANDWIDTH, RESOLUTION, FRAME-RATE,
    CODECS), from the metadata saved at completion rather than re-probing every file."""
    files = list(playlist.videoFiles.order_by("resolution"))
    if not files:
        return None
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-INDEPENDENT-SEGMENTS"]
    for file in files:
        probe = file.metadata or {}
        stream = next(
            (s for s in probe.get("streams") or [] if s.get("codec_type") == "video"), {}
        )
        line = f"#EXT-X-STREAM-INF:BANDWIDTH={video.get_bandwidth_bits(file)}"
        line += f",RESOLUTION={stream.get('width') or 0}x{stream.get('height') or 0}"
        if file.fps and file.fps > 0:
            line += f",FRAME-RATE={file.fps}"
        codecs = [
            get_video_stream_codec(file.filename, probe),
            get_audio_stream_codec(file.filename, probe),
        ]
        line += f',CODECS="{",".join(filter(None, codecs))}"'
        lines += [line, get_hls_resolution_playlist_filename(os.path.basename(file.filename))]
    key = get_video_directory(video, "master.m3u8")
    storage_replace(
        video_storage, key, ContentFile(("\n".join(lines) + "\n").encode(), name="master.m3u8")
    )
    if playlist.playlistFilename != key:
        playlist.playlistFilename = key
        playlist.save(update_fields=["playlistFilename", "updatedAt"])
    return key


class HLSTranscodingJobHandler(VODHLSTranscodingJobHandler):
    """VOD HLS jobs, hardened."""

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
        """Like the library's, but the ping waits for the commit (DESIGN §5)."""
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
            priority=priority,
        )
        if runner_job.state == RunnerJobState.PENDING:
            _ping_on_commit()
        return runner_job

    # --- completion ---------------------------------------------------------------------------

    def complete(self, runner_job: RunnerJob, result_payload):
        """Completed → waiting children pending (ping on commit); failed → children
        PARENT_ERRORED. Then the host is told after commit if the transcoding is over."""
        runner_job.state = RunnerJobState.COMPLETING
        runner_job.save()
        try:
            with transaction.atomic():
                self.specific_complete(runner_job, result_payload)
            runner_job.state = RunnerJobState.COMPLETED
        except Exception as err:
            logger.exception("Completion of runner job %s failed.", runner_job.uuid)
            runner_job.state = RunnerJobState.ERRORED
            runner_job.error = f"Completion failed: {err}"[:2000]
        runner_job.progress = None
        runner_job.finishedAt = timezone.now()
        runner_job.save()

        if runner_job.state == RunnerJobState.COMPLETED:
            affected = runner_job.children.filter(
                state=RunnerJobState.WAITING_FOR_PARENT_JOB
            ).update(state=RunnerJobState.PENDING)
            if affected:
                _ping_on_commit()
        else:
            self._children_parent_errored(runner_job)
        transcoding_ended_notify(video_uuid=runner_job_video_uuid(runner_job))

    def specific_complete(self, runner_job: RunnerJob, result_payload):
        """Store the rendition under our names, then rewrite the master playlist.

        The video row is locked so two renditions completing at once both end up in it.
        """
        video_uuid = runner_job_video_uuid(runner_job)
        video = Video.objects.select_for_update().filter(uuid=video_uuid).first()
        if video is None:
            logger.info("Video %s is gone; dropping the rendition.", video_uuid)
            return
        resolution = int(runner_job.payload["output"]["resolution"])
        video_key = get_video_directory(
            video, generate_hls_video_filename(resolution, video.baseFilename)
        )
        playlist_key = get_hls_resolution_playlist_filename(video_key)

        storage_replace(video_storage, video_key, result_payload["video_file"])
        raw = result_payload["resolution_playlist_file"].read()
        text = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
        text = FRAGMENTED_MP4_RE.sub(os.path.basename(video_key), text)
        storage_replace(
            video_storage, playlist_key, ContentFile(text.encode(), name="playlist.m3u8")
        )

        probe = probe_normalized(key=video_key)
        playlist, _ = VideoStreamingPlaylist.objects.get_or_create(video=video)
        VideoFile.objects.filter(video=video, filename=video_key).delete()
        VideoFile.objects.create(
            video=video,
            streamingPlaylist=playlist,
            resolution=resolution,
            filename=video_key,
            extname=".mp4",
            size=int(probe["format"]["size"]),
            fps=get_video_stream_fps(probe),
            metadata=build_file_metadata(probe),
        )
        if not video.duration:
            video.duration = round(probe_duration(probe) or 0) or None
            video.save(update_fields=["duration", "updatedAt"])
        master_playlist_write(video=video, playlist=playlist)
        # The library's bookkeeping (pendingTranscode, video state, its callback → our adapter).
        on_transcoding_ended(video=video, move_video_to_next_state=True)
        logger.info("Runner job %s stored %sp of %s.", runner_job.uuid, resolution, video.uuid)

    # --- failures -----------------------------------------------------------------------------

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
            runner_job.reset_to_pending()
            runner_job.save()
            _ping_on_commit()
        else:
            runner_job.error = message
            runner_job.set_to_error_or_cancel(next_state)
            self._children_parent_errored(runner_job)
        transcoding_ended_notify(video_uuid=runner_job_video_uuid(runner_job))

    def abort(self, runner_job: RunnerJob):
        """Back to pending for another runner, unless it failed too often (counted)."""
        if runner_job.failures >= settings.TRANSCODING_RUNNER_MAX_FAILURE:
            self.error(runner_job, "Aborted too many times.")
            return
        self.specific_abort(runner_job)
        runner_job.reset_to_pending()
        runner_job.save()
        _ping_on_commit()


def runner_job_handler(runner_job: RunnerJob):
    """Our handler for the jobs we create; the library's for any other type."""
    from django_peertube_runner_connector.models import RunnerJobType
    from django_peertube_runner_connector.utils.job_handlers.get_job_handler import (
        get_runner_job_handler_class,
    )

    if runner_job.type == RunnerJobType.VOD_HLS_TRANSCODING:
        return HLSTranscodingJobHandler()
    if runner_job.type == RunnerJobType.VIDEO_TRANSCRIPTION:
        from .transcription import TranscriptionHandler  # it builds on this module

        return TranscriptionHandler()
    return get_runner_job_handler_class(runner_job)()
