"""Legacy AWS videos for a dev machine: files made with ffmpeg in MediaConvert's key layout.

Nothing binary is committed: ``manage.py seed_legacy_videos`` (run by ``make run``) makes a few
seconds of test pattern per resolution, the CMAF/HLS playlists and segments, thumbnails and a
preview, and saves them in the legacy storage (a folder on the embedded default, the AWS
bucket's stand-in), so every legacy flow (URLs, migration, pipeline switch) can be tried.
"""

import subprocess
import tempfile
import uuid
from pathlib import Path

from django.core.files import File
from django.db import transaction

from marsha_runner.storage import legacy_storage, storage_replace

from .constants import StorageLocation, TranscodePipeline, UploadState
from .media_urls import video_refresh_urls
from .models import Video

SEED_NAMESPACE = uuid.UUID("8e1f3a52-6c1d-4a0c-9a51-2f0c2b7d4e10")
SEED_STAMP = 1_600_000_000  # 2020: AWS times
BANDWIDTH = {144: 200_000, 240: 400_000, 360: 800_000, 480: 1_200_000, 720: 2_500_000}


def _ffmpeg(*args: str) -> None:
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args],
        check=True,
        timeout=300,
        capture_output=True,
    )


def legacy_files_make(*, video: Video, stamp: int, resolutions, seconds: float, workdir: Path):
    """{legacy key: local file} of one video, in MediaConvert's layout
    (docs/design.md#storage-keys)."""
    files: dict[str, Path] = {}
    master = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS"]
    for resolution in resolutions:
        width = resolution * 16 // 9 // 2 * 2
        name = f"{stamp}_{resolution}"
        mp4 = workdir / f"{name}.mp4"
        _ffmpeg(
            "-f", "lavfi", "-i", f"testsrc2=size={width}x{resolution}:rate=25:duration={seconds}",
            "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "25",
            "-c:a", "aac", "-b:a", "64k", "-shortest", "-movflags", "+faststart", str(mp4),
        )  # fmt: skip
        files[video.legacy_mp4_key(stamp, resolution)] = mp4
        cmaf = workdir / "cmaf"
        cmaf.mkdir(exist_ok=True)
        _ffmpeg(
            "-i", str(mp4), "-c", "copy", "-f", "hls", "-hls_time", "1",
            "-hls_playlist_type", "vod", "-hls_segment_type", "fmp4",
            "-hls_fmp4_init_filename", f"{name}_init.mp4",
            "-hls_segment_filename", str(cmaf / f"{name}_%05d.m4s"),
            str(cmaf / f"{name}.m3u8"),
        )  # fmt: skip
        master += [
            f"#EXT-X-STREAM-INF:BANDWIDTH={BANDWIDTH.get(resolution, 3_000_000)},"
            f"RESOLUTION={width}x{resolution}",
            f"{name}.m3u8",
        ]
        thumbnail = workdir / f"{name}.jpg"
        _ffmpeg("-i", str(mp4), "-frames:v", "1", "-q:v", "4", str(thumbnail))
        files[video.legacy_thumbnail_key(stamp, resolution)] = thumbnail
    (workdir / "cmaf" / f"{stamp}.m3u8").write_text("\n".join(master) + "\n")
    for path in sorted((workdir / "cmaf").iterdir()):
        files[f"{video.legacy_prefix()}cmaf/{path.name}"] = path
    preview = workdir / "preview.jpg"
    top = files[video.legacy_mp4_key(stamp, resolutions[-1])]
    _ffmpeg("-i", str(top), "-vf", "fps=1,scale=160:-2,tile=4x1", "-frames:v", "1", str(preview))
    files[video.legacy_preview_key(stamp)] = preview
    return files


def legacy_video_seed(
    *, title: str, resolutions=(240, 480), seconds: float = 4, stamp: int = SEED_STAMP
) -> tuple[Video, bool]:
    """A ready legacy video (AWS pipeline, AWS location) with its files; (video, created).

    Idempotent by title: an existing video keeps its row, and its files are made again only
    when its manifest is missing from the legacy storage.
    """
    video_id = uuid.uuid5(SEED_NAMESPACE, title)
    resolutions = sorted(int(r) for r in resolutions)
    storage = legacy_storage()
    video = Video.objects.filter(pk=video_id).first()
    if video is not None and (
        video.storage_location != StorageLocation.AWS
        or storage.exists(video.legacy_manifest_key(stamp))
    ):
        return video, False
    video = video or Video(pk=video_id, title=title)
    with tempfile.TemporaryDirectory() as tmp:
        files = legacy_files_make(
            video=video, stamp=stamp, resolutions=resolutions, seconds=seconds, workdir=Path(tmp)
        )
        for key, path in files.items():
            with open(path, "rb") as handle:
                storage_replace(storage, key, File(handle, name=path.name))
        with transaction.atomic():
            video.upload_state = UploadState.READY
            video.uploaded_on = Video.stamp_to_datetime(stamp)
            video.transcode_pipeline = TranscodePipeline.AWS
            video.storage_location = StorageLocation.AWS
            video.resolutions = resolutions
            video.duration = float(seconds)
            video.size = sum(path.stat().st_size for path in files.values())
            video.save()
            video_refresh_urls(video=video)
    return video, True
