"""What checking a runner's result costs a success call (issue 6, item 7; not run by CI).

``runners.results.runner_job_result_check`` ffprobes the uploaded rendition and reads its
playlist before the job moves. This script makes real HLS fMP4 renditions with ffmpeg (single
file + byte-range playlist, as peertube-runner sends them) at a few resolutions and durations,
and times the check on each, the file on disk (an upload over FILE_UPLOAD_MAX_MEMORY_SIZE) and
in memory (a smaller one, copied to a temporary file for ffprobe).

    .venv/bin/python bench/result_check.py [--runs 20] [--seconds 10,60]
"""

import argparse
import os
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import common  # noqa: F401  (bench/ is on sys.path as a script; common adds the project)

SIZES = {240: (426, 240), 720: (1280, 720), 1080: (1920, 1080)}


def _rendition(workdir: Path, *, height: int, seconds: int) -> tuple[Path, Path]:
    width, height = SIZES[height]
    stem = f"{uuid.uuid4()}-{height}"
    video, playlist = workdir / f"{stem}-fragmented.mp4", workdir / f"{stem}.m3u8"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi",
         "-i", f"testsrc2=size={width}x{height}:rate=30:duration={seconds}",
         "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
         "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
         "-shortest", "-f", "hls", "-hls_time", "4", "-hls_playlist_type", "vod",
         "-hls_segment_type", "fmp4", "-hls_flags", "single_file",
         "-hls_segment_filename", str(video), str(playlist)],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    return video, playlist


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--seconds", default="10,60")
    args = parser.parse_args()

    os.environ.setdefault("MARSHA_RUNNER_ENV_FILE", "env.d/test")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marsha_runner.settings")
    import django

    django.setup()
    from django.core.files.uploadedfile import SimpleUploadedFile, TemporaryUploadedFile
    from django_peertube_runner_connector.models import RunnerJob, RunnerJobType

    from marsha_runner.runners.results import runner_job_result_check

    def upload_on_disk(path: Path):
        upload = TemporaryUploadedFile(path.name, "video/mp4", path.stat().st_size, None)
        with open(path, "rb") as source:
            while chunk := source.read(1 << 20):
                upload.write(chunk)
        upload.seek(0)
        return upload

    print(f"{'rendition':>16} {'size':>9} {'where':>7} {'median ms':>10} {'p95 ms':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for seconds in (int(s) for s in args.seconds.split(",")):
            for height in SIZES:
                video, playlist = _rendition(workdir, height=height, seconds=seconds)
                job = RunnerJob(
                    type=RunnerJobType.VOD_HLS_TRANSCODING,
                    payload={"output": {"resolution": height, "fps": 30}},
                )
                playlist_bytes = playlist.read_bytes()
                for where in ("disk", "memory"):
                    timings = []
                    for _ in range(args.runs):
                        if where == "disk":
                            upload = upload_on_disk(video)
                        else:
                            upload = SimpleUploadedFile(video.name, video.read_bytes())
                        result = {
                            "video_file": upload,
                            "resolution_playlist_file": SimpleUploadedFile(
                                "p.m3u8", playlist_bytes
                            ),
                        }
                        started = time.perf_counter()
                        runner_job_result_check(job=job, result=result)
                        timings.append((time.perf_counter() - started) * 1000)
                        upload.close()
                    timings.sort()
                    p95 = timings[max(0, int(len(timings) * 0.95) - 1)]
                    print(
                        f"{f'{height}p {seconds}s':>16} {video.stat().st_size / 1e6:>7.1f}MB "
                        f"{where:>7} {statistics.median(timings):>10.1f} {p95:>8.1f}"
                    )


if __name__ == "__main__":
    main()
