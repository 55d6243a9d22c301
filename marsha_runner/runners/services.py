"""Services of the runners app: the only module the rest of the project calls."""

import logging
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django_peertube_runner_connector.models import Runner, RunnerRegistrationToken

from marsha_runner.storage import storage_read_location

from .outcome import TranscodingOutcome, transcoding_conclude
from .probe import ProbeFailed, ffprobe, probe_duration, probe_stored, probe_video_stream

logger = logging.getLogger(__name__)


def runner_tokens_in_use(tokens) -> bool:
    """Whether any of ``tokens`` is a live registration or runner token."""
    tokens = [t for t in tokens if t]
    if not tokens:
        return False
    return (
        RunnerRegistrationToken.objects.filter(registrationToken__in=tokens).exists()
        or Runner.objects.filter(runnerToken__in=tokens).exists()
    )


# --- Runners and registration tokens ----------------------------------------------------------
# seed_runner's logic. ``changes`` name what changed, never a token value.

REGISTRATION_TOKEN_PREFIX = "ptrrt-"
RUNNER_TOKEN_PREFIX = "ptrt-"
SEEDED_RUNNER_DESCRIPTION = "Pre-registered by seed_runner"


@dataclass(frozen=True)
class RunnerSeedResult:
    """Token values in effect after a seed or a rotation, and what was changed."""

    registration_token: str
    runner_name: str | None
    runner_token: str | None
    changes: tuple[str, ...]


def registration_token_generate() -> str:
    """A fresh registration token in the library's own format."""
    return f"{REGISTRATION_TOKEN_PREFIX}{uuid.uuid4()}"


def runner_token_generate() -> str:
    """A fresh runner token in the library's own format (as its register view makes)."""
    return f"{RUNNER_TOKEN_PREFIX}{uuid.uuid4()}"


def runner_token_validate(*, value, label: str) -> None:
    """Refuse blank or oversized tokens, and the public dev tokens when DEBUG is off."""
    if not isinstance(value, str) or not value or value != value.strip() or len(value) > 255:
        raise ValidationError(
            f"The {label} must be a non-empty string of at most 255 characters, "
            "without surrounding spaces."
        )
    dev_tokens = {t for t in getattr(settings, "DEV_RUNNER_TOKENS", []) if t}
    if not settings.DEBUG and value in dev_tokens:
        raise ValidationError(
            f"The {label} is a dev token of env.d/peertube_runner (public): refused while "
            "DEBUG is off. Give your own value or rotate to a fresh one."
        )


def _runner_create(*, name, token, registration_token):
    runner = Runner(
        name=name,
        runnerToken=token,
        description=SEEDED_RUNNER_DESCRIPTION,
        ip="0.0.0.0",  # noqa: S104  (not an address we bind: the runner has not called yet)
        lastContact=timezone.now(),
        runnerRegistrationToken=registration_token,
    )
    runner.full_clean()
    runner.save()
    return runner


def _runner_token_free(*, token, name):
    """Two runners with one token would make the library's ``get(runnerToken=…)`` raise."""
    if Runner.objects.filter(runnerToken=token).exclude(name=name).exists():
        raise ValidationError("Another runner already uses this runner token.")


def runner_seed(
    *,
    registration_token: str,
    runner_name: str | None = None,
    runner_token: str | None = None,
    dry_run: bool = False,
) -> RunnerSeedResult:
    """Make sure the registration token and the pre-registered runner exist, as given.

    Idempotent: rows already matching are left untouched (same ``updatedAt``). A runner of
    that name with another token gets the given token, so a runner configured with it works
    without calling register. ``dry_run`` does everything then rolls back.
    """
    runner_token_validate(value=registration_token, label="registration token")
    if bool(runner_name) != bool(runner_token):
        raise ValidationError("A runner needs both a name and a runner token.")
    if runner_name:
        runner_token_validate(value=runner_token, label="runner token")
        if len(runner_name) > 255 or runner_name != runner_name.strip():
            raise ValidationError("The runner name must be at most 255 characters, trimmed.")

    changes = []
    with transaction.atomic():
        token_row = RunnerRegistrationToken.objects.filter(
            registrationToken=registration_token
        ).first()
        if token_row is None:
            token_row = RunnerRegistrationToken(registrationToken=registration_token)
            token_row.full_clean()
            token_row.save()
            changes.append("created the registration token")
        if runner_name:
            _runner_token_free(token=runner_token, name=runner_name)
            runner = Runner.objects.select_for_update().filter(name=runner_name).first()
            if runner is None:
                _runner_create(name=runner_name, token=runner_token, registration_token=token_row)
                changes.append(f"created the runner {runner_name!r}")
            elif runner.runnerToken != runner_token:
                runner.runnerToken = runner_token
                runner.save(update_fields=["runnerToken", "updatedAt"])
                changes.append(f"set the token of the runner {runner_name!r}")
        if dry_run:
            transaction.set_rollback(True)
    return RunnerSeedResult(
        registration_token=registration_token,
        runner_name=runner_name or None,
        runner_token=runner_token or None,
        changes=tuple(changes),
    )


def registration_token_rotate() -> RunnerRegistrationToken:
    """Replace every registration token by one fresh token, so no old one registers again.

    Runners registered with the old tokens are moved to the kept row: a registration token
    deleted by the library's cascade would delete its runners too.
    """
    with transaction.atomic():
        rows = list(
            RunnerRegistrationToken.objects.select_for_update().order_by("createdAt", "id")
        )
        if not rows:
            kept = RunnerRegistrationToken(registrationToken=registration_token_generate())
        else:
            kept, *others = rows
            other_ids = [row.pk for row in others]
            Runner.objects.filter(runnerRegistrationToken_id__in=other_ids).update(
                runnerRegistrationToken=kept
            )
            RunnerRegistrationToken.objects.filter(pk__in=other_ids).delete()
            kept.registrationToken = registration_token_generate()
        kept.full_clean()
        kept.save()
    return kept


def runner_token_rotate(
    *, runner_name: str, registration_token: RunnerRegistrationToken
) -> Runner:
    """Give the runner ``runner_name`` a fresh token (created pre-registered when missing)."""
    with transaction.atomic():
        runner = Runner.objects.select_for_update().filter(name=runner_name).first()
        if runner is None:
            return _runner_create(
                name=runner_name,
                token=runner_token_generate(),
                registration_token=registration_token,
            )
        runner.runnerToken = runner_token_generate()
        runner.save(update_fields=["runnerToken", "updatedAt"])
        return runner


def runner_seed_rotate(*, runner_name: str | None = None, dry_run: bool = False):
    """``seed_runner --rotate``: fresh registration token, and runner token when named."""
    changes = []
    with transaction.atomic():
        token_row = registration_token_rotate()
        changes.append("replaced the registration token(s) by a fresh one")
        runner = None
        if runner_name:
            existed = Runner.objects.filter(name=runner_name).exists()
            runner = runner_token_rotate(runner_name=runner_name, registration_token=token_row)
            verb = "gave a fresh token to" if existed else "created"
            changes.append(f"{verb} the runner {runner_name!r}")
        if dry_run:
            transaction.set_rollback(True)
    return RunnerSeedResult(
        registration_token=token_row.registrationToken,
        runner_name=runner_name or None,
        runner_token=runner.runnerToken if runner else None,
        changes=tuple(changes),
    )


# --- Transcoding: probe, job creation, outcome (the contract with the videos app) -------------
# Reimplements the library's transcode_video + create_transcoding_jobs (DESIGN §7.3, §7.7):
# one transaction, every rendition keeps the source fps within the library's rules, an input
# under the lowest enabled resolution still gives one rendition, runners pinged on commit.

THUMBNAIL_TIMEOUT = 300


class SourceUnreadable(ProbeFailed):
    """ffprobe could not read the source (maybe not uploaded/visible yet): retry later."""


class SourceRefused(Exception):
    """The source cannot be transcoded; str(err) is a human reason stored on the video."""


def transcoding_probe(*, source_key: str) -> dict:
    """ffprobe JSON of the source (a local path or a URL); SourceUnreadable if unreadable."""
    from django_peertube_runner_connector.storage import video_storage

    try:
        url = storage_read_location(video_storage, source_key)
    except Exception as err:  # noqa: BLE001  (any storage failure means: not readable now)
        raise SourceUnreadable(f"No URL for the source: {type(err).__name__}") from err
    try:
        return ffprobe(url)
    except ProbeFailed as err:
        raise SourceUnreadable(str(err)) from err


def transcoding_fps(*, resolution: int, fps: float) -> int:
    """The library's compute_output_fps, called with its arguments in the right order."""
    from django_peertube_runner_connector.utils.transcoding.job_creation import (
        compute_output_fps,
    )

    return compute_output_fps(resolution=resolution, fps=fps)


def transcoding_ladder(*, input_resolution: int, input_fps: float) -> list[tuple[int, int]]:
    """(resolution, fps) of each rendition, the top one first (the parent job).

    Above the top enabled resolution: down to it. Under the lowest enabled one: one rendition
    at the input's own (even) resolution, never upscaled.
    """
    from django_peertube_runner_connector.utils.resolutions import (
        compute_max_resolution_to_transcode,
        compute_resolutions_to_transcode,
        to_even,
    )

    top = compute_max_resolution_to_transcode(input_resolution)
    if not top:
        top = to_even(input_resolution)
        lower = []
    else:
        lower = compute_resolutions_to_transcode(
            input_resolution=top, include_input=False, strict_lower=True, has_audio=True
        )
        lower = [r for r in lower if r]
    resolutions = [top, *sorted(lower, reverse=True)]
    return [(r, transcoding_fps(resolution=r, fps=input_fps)) for r in resolutions]


def _thumbnail_make(*, url: str, key: str) -> str | None:
    """First frame as JPEG at ``key``; None (logged) when ffmpeg cannot make it."""
    import subprocess
    import tempfile

    from django.core.files import File
    from django_peertube_runner_connector.storage import video_storage

    from marsha_runner.storage import storage_replace

    with tempfile.TemporaryDirectory() as tmp:
        output = f"{tmp}/thumbnail.jpg"
        args = ["ffmpeg", "-v", "error", "-y", "-i", url, "-frames:v", "1", "-q:v", "3", output]
        try:
            done = subprocess.run(args, capture_output=True, timeout=THUMBNAIL_TIMEOUT)
        except (OSError, subprocess.TimeoutExpired):
            done = None
        if done is None or done.returncode != 0:
            logger.warning("No thumbnail could be made for %s.", key)
            return None
        with open(output, "rb") as handle:
            return storage_replace(video_storage, key, File(handle, name="thumbnail.jpg"))


@dataclass(frozen=True)
class TranscodingPrepared:
    """What ``transcoding_prepare`` read and wrote outside any transaction, for the create."""

    source_key: str
    destination: str
    base_name: str
    probe: dict
    duration: float
    size: int
    input_resolution: int
    input_fps: int
    ladder: list[tuple[int, int]]
    thumbnail_key: str | None


def transcoding_prepare(
    *, source_key: str, destination: str, base_name: str, probe: dict | None = None
) -> TranscodingPrepared:
    """The slow part of a launch, outside any transaction and lock: probe the source (unless
    ``probe`` is given), check it, plan the ladder, make the thumbnail
    (destination/thumbnail.jpg). Raises SourceUnreadable / SourceRefused (no video stream,
    unreadable, zero duration...). Writes no row: ``transcoding_create`` does, or
    ``transcoding_discard`` removes the thumbnail.
    """
    from django_peertube_runner_connector.storage import video_storage
    from django_peertube_runner_connector.utils.ffprobe import get_video_stream_fps

    if probe is None:
        probe = transcoding_probe(source_key=source_key)
    stream = probe_video_stream(probe)
    if stream is None:
        raise SourceRefused("no video stream found (an audio file, or images only)")
    width, height = int(stream.get("width") or 0), int(stream.get("height") or 0)
    if width <= 0 or height <= 0:
        raise SourceRefused("The video stream has no picture size.")
    duration = probe_duration(probe) or 0
    if duration <= 0:
        raise SourceRefused("The video has no duration.")
    input_fps = get_video_stream_fps(probe)
    if input_fps < settings.TRANSCODING_FPS_MIN:
        raise SourceRefused(f"The frame rate ({input_fps} fps) cannot be read or is too low.")
    input_resolution = min(width, height)
    ladder = transcoding_ladder(input_resolution=input_resolution, input_fps=input_fps)
    try:
        size = int(probe["format"]["size"])
    except (KeyError, TypeError, ValueError):
        try:
            size = video_storage.size(source_key)
        except Exception as err:  # noqa: BLE001  (not visible in storage yet)
            raise SourceUnreadable(f"No size for the source: {type(err).__name__}") from err

    thumbnail_key = _thumbnail_make(
        url=storage_read_location(video_storage, source_key), key=f"{destination}/thumbnail.jpg"
    )
    return TranscodingPrepared(
        source_key=source_key,
        destination=destination,
        base_name=base_name,
        probe=probe,
        duration=duration,
        size=size,
        input_resolution=input_resolution,
        input_fps=input_fps,
        ladder=ladder,
        thumbnail_key=thumbnail_key,
    )


def transcoding_create(*, prepared: TranscodingPrepared) -> str:
    """Rows only: the library's transcoded Video (directory=destination,
    baseFilename=base_name), its source VideoFile and the HLS runner job tree, in one
    transaction (the caller's, when it has one); runners pinged on commit. Returns the
    transcoded video's uuid (str)."""
    from django_peertube_runner_connector.models import Video, VideoFile
    from django_peertube_runner_connector.utils.ffprobe import build_file_metadata
    from django_peertube_runner_connector.utils.video_state import build_next_video_state

    from .handlers import HLSTranscodingJobHandler

    domain = settings.RUNNERS_CALLBACK_DOMAIN.rstrip("/")
    with transaction.atomic():
        video = Video.objects.create(
            state=build_next_video_state(),
            directory=prepared.destination,
            baseFilename=prepared.base_name,
            duration=round(prepared.duration),
            thumbnailFilename=prepared.thumbnail_key,
        )
        VideoFile.objects.create(
            video=video,
            filename=prepared.source_key,
            extname="",
            size=prepared.size,
            resolution=prepared.input_resolution,
            fps=prepared.input_fps,
            metadata=build_file_metadata(probe=prepared.probe),
        )
        handler = HLSTranscodingJobHandler()
        (top, top_fps), *lower = prepared.ladder
        parent = handler.create(
            video=video, resolution=top, fps=top_fps, depends_on_runner_job=None, domain=domain
        )
        for resolution, fps in lower:
            handler.create(
                video=video,
                resolution=resolution,
                fps=fps,
                depends_on_runner_job=parent,
                domain=domain,
            )
    logger.info(
        "Transcoding of %s started: %s.",
        prepared.destination,
        ", ".join(f"{r}p@{f}" for r, f in prepared.ladder),
    )
    return str(video.uuid)


def transcoding_discard(*, prepared: TranscodingPrepared) -> None:
    """Undo ``transcoding_prepare`` when no create follows: remove the thumbnail it wrote."""
    from django_peertube_runner_connector.storage import video_storage

    if prepared.thumbnail_key:
        try:
            video_storage.delete(prepared.thumbnail_key)
        except Exception:  # noqa: BLE001  (a leftover thumbnail is not worth an error)
            logger.warning("Could not remove the thumbnail %s.", prepared.thumbnail_key)


def transcoding_start(
    *, source_key: str, destination: str, base_name: str, probe: dict | None = None
) -> str:
    """``transcoding_prepare`` then ``transcoding_create``, discarding on failure: for callers
    with no row of their own to re-check in between (commands, tests)."""
    prepared = transcoding_prepare(
        source_key=source_key, destination=destination, base_name=base_name, probe=probe
    )
    try:
        return transcoding_create(prepared=prepared)
    except Exception:
        transcoding_discard(prepared=prepared)
        raise


def transcoding_outcome_get(*, destination: str) -> TranscodingOutcome | None:
    """The outcome of the transcoding written to ``destination``; None while one of its jobs
    is still active, or when no transcoding was started there."""
    from django_peertube_runner_connector.models import Video

    video = Video.objects.filter(directory=destination).order_by("-createdAt").first()
    return transcoding_conclude(video=video) if video is not None else None


def transcoding_release_source(*, destination: str) -> None:
    """Delete the temp source object and its library row once no job needs it."""
    from django_peertube_runner_connector.models import Video, VideoFile
    from django_peertube_runner_connector.storage import video_storage

    from .selectors import runner_jobs_active_exist

    for video in Video.objects.filter(directory=destination):
        if runner_jobs_active_exist(video_uuid=video.uuid):
            continue
        for source in VideoFile.objects.filter(video=video, streamingPlaylist__isnull=True):
            try:
                if source.filename and video_storage.exists(source.filename):
                    video_storage.delete(source.filename)
            except Exception:  # noqa: BLE001  (storage down: keep the row, retry later)
                logger.warning("Could not delete the source %s.", source.filename)
                continue
            source.delete()


def runners_ping() -> None:
    """Tell every connected runner that jobs wait (through Redis when configured)."""
    from .socket import runners_ping as ping

    ping()


def transcoding_source_delete(*, destination: str, source_key: str, dry_run: bool = False):
    """Delete an uploaded source from storage and its rows from the library's tables, both or
    neither; kept (False) while a job of a transcoding reading it is still active.

    Returns True when deleted (or would be, on a dry run).
    """
    from django_peertube_runner_connector.models import RunnerJob, Video, VideoFile
    from django_peertube_runner_connector.storage import video_storage

    from .selectors import ACTIVE_STATES

    with transaction.atomic():
        rows = VideoFile.objects.select_for_update().filter(
            filename=source_key, streamingPlaylist__isnull=True
        )
        video_uuids = {
            str(uuid)
            for uuid in Video.objects.filter(directory=destination).values_list("uuid", flat=True)
        } | {str(uuid) for uuid in rows.values_list("video__uuid", flat=True)}
        busy = RunnerJob.objects.filter(
            state__in=ACTIVE_STATES, privatePayload__videoUUID__in=list(video_uuids)
        ).exists()
        if busy:
            return False
        if dry_run:
            return True
        rows.delete()
        if video_storage.exists(source_key):
            video_storage.delete(source_key)  # raises: the rows come back (rollback)
    return True


def transcoding_sources_listed() -> list[str]:
    """Keys of the uploaded sources the library still has rows for (cleanup candidates)."""
    from django_peertube_runner_connector.models import VideoFile

    return list(
        VideoFile.objects.filter(streamingPlaylist__isnull=True, filename__startswith="tmp/")
        .values_list("filename", flat=True)
        .distinct()
    )


# --- Missing renditions (the staff's "Transcode missing renditions", PeerTube #6546) ---------


def transcoding_ladder_of(*, key: str) -> list[tuple[int, int]]:
    """The (resolution, fps) ladder a stored video file gives, top first. SourceUnreadable /
    SourceRefused as for a launch."""
    from django_peertube_runner_connector.utils.ffprobe import get_video_stream_fps

    probe = transcoding_probe(source_key=key)
    stream = probe_video_stream(probe)
    if stream is None:
        raise SourceRefused("no video stream found")
    input_resolution = min(int(stream.get("width") or 0), int(stream.get("height") or 0))
    if input_resolution <= 0:
        raise SourceRefused("The video stream has no picture size.")
    return transcoding_ladder(
        input_resolution=input_resolution, input_fps=get_video_stream_fps(probe)
    )


def transcoding_add_renditions(
    *, source_key: str, destination: str, base_name: str, existing: dict, missing: list
) -> str:
    """A transcoded video for ``destination`` that already holds the renditions ``existing``
    ({resolution: key}, probed and listed in its playlist, so the master names them all) and
    one independent HLS job per ``missing`` (resolution, fps) from ``source_key``. Rows in
    the caller's transaction; runners pinged on commit. Returns the transcoded video's uuid.
    """
    from django_peertube_runner_connector.models import Video, VideoFile, VideoStreamingPlaylist
    from django_peertube_runner_connector.storage import video_storage
    from django_peertube_runner_connector.utils.ffprobe import (
        build_file_metadata,
        get_video_stream_fps,
    )
    from django_peertube_runner_connector.utils.video_state import build_next_video_state

    from .handlers import HLSTranscodingJobHandler

    probes = {resolution: probe_stored(key=key) for resolution, key in existing.items()}
    source_probe = transcoding_probe(source_key=source_key)
    thumbnail = f"{destination}/thumbnail.jpg"
    domain = settings.RUNNERS_CALLBACK_DOMAIN.rstrip("/")
    with transaction.atomic():
        video = Video.objects.create(
            state=build_next_video_state(),
            directory=destination,
            baseFilename=base_name,
            duration=round(probe_duration(source_probe) or 0) or None,
            thumbnailFilename=thumbnail if video_storage.exists(thumbnail) else None,
        )
        VideoFile.objects.create(
            video=video,
            filename=source_key,
            extname="",
            size=video_storage.size(source_key),
            resolution=max(existing) if existing else 0,
            fps=get_video_stream_fps(source_probe),
            metadata=build_file_metadata(probe=source_probe),
        )
        playlist = VideoStreamingPlaylist.objects.create(video=video)
        for resolution, key in existing.items():
            VideoFile.objects.create(
                video=video,
                streamingPlaylist=playlist,
                resolution=resolution,
                filename=key,
                extname=".mp4",
                size=int(probes[resolution]["format"]["size"]),
                fps=get_video_stream_fps(probes[resolution]),
                metadata=build_file_metadata(probes[resolution]),
            )
        handler = HLSTranscodingJobHandler()
        for resolution, fps in missing:
            handler.create(
                video=video, resolution=resolution, fps=fps, depends_on_runner_job=None,
                domain=domain,
            )  # fmt: skip
    logger.info(
        "Missing renditions of %s started: %s.",
        destination,
        ", ".join(f"{r}p@{f}" for r, f in missing),
    )
    return str(video.uuid)
