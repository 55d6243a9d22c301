"""What staff call the library's rows: a job by its kind, resolution and video title, a runner
by its name, a registration token by a masked prefix they can tell apart and its date.

The library's models print "RunnerJob object (<pk>)", and the pk is not the job uuid staff
see anywhere: every confirmation, message, log entry, filter and title goes through these.
"""

JOB_KINDS = {
    "vod-hls-transcoding": "HLS",
    "vod-web-video-transcoding": "Web video",
    "vod-audio-merge-transcoding": "Audio merge",
    "live-rtmp-hls-transcoding": "Live",
    "video-studio-transcoding": "Studio",
    "video-transcription": "Transcription",
}
# Characters of a registration token's random part shown after its kind prefix.
TOKEN_SHOWN = 4


def mask_token(value: str | None) -> str:
    """At most the first 4 characters (the library's prefix): tells kinds apart, nothing
    more (job and runner tokens, secrets in payloads)."""
    if not value:
        return "-"
    return f"{value[:4]}…"


def token_prefix(value: str | None) -> str:
    """A registration token's kind prefix and the first characters of its random part
    (``ptrrt-9f3a…``): enough to tell a fleet's tokens apart, far too little to use."""
    if not value:
        return "-"
    kind, _, rest = value.partition("-")
    if not rest:
        return mask_token(value)
    return f"{kind}-{rest[:TOKEN_SHOWN]}…"


def runner_job_resolution(job) -> int | None:
    """The output resolution of a transcoding job (its payload's ``output.resolution``); None
    for a job without one (a transcription). The one reading of it: admin, exports, metrics."""
    payload = job.payload if isinstance(job.payload, dict) else {}
    output = payload.get("output") if isinstance(payload.get("output"), dict) else {}
    resolution = output.get("resolution")
    return int(resolution) if isinstance(resolution, int | float) and resolution else None


def runner_job_resolution_label(job) -> str:
    """``720p``, or ``-`` for a job without a resolution (how staff read it in every table)."""
    resolution = runner_job_resolution(job)
    return f"{resolution}p" if resolution else "-"


def runner_job_name(job, *, title: str | None = None) -> str:
    """``HLS 720p of “Physics 101”``; without a known title, the job uuid's start."""
    kind = JOB_KINDS.get(job.type, job.type or "job")
    resolution = runner_job_resolution(job)
    what = f"{kind} {resolution}p" if resolution else kind
    if title:
        return f"{what} of “{title}”"
    return f"{what} (job {str(job.uuid)[:8]})"
