"""The dev runner's transcription speed on this machine (issue 17; not run by CI).

Speech made by Debian's espeak-ng (a paragraph read again and again up to about ``--seconds``),
in an mp4 like an upload (H.264 + AAC), transcribed by ``devrunner.whisper.whisper_transcribe``
as a ``video-transcription`` job is: the model (default: the bundled Whisper tiny.en) loaded
once, then ``--runs`` transcriptions. Prints the model load time and, per run, the wall time
and the real-time factor (transcription seconds / speech seconds; below 1 is faster than
real time), with the CPU time beside it (this process's, every thread: what the factor
would be on an idle machine of one core).

    .venv/bin/python bench/transcription.py [--seconds 60] [--runs 3] [--model PATH_OR_NAME]
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common  # noqa: F401  (bench/ is on sys.path as a script; common adds the project)

from marsha_runner.devrunner import whisper  # noqa: E402

PARAGRAPH = (
    "Welcome to the course. Today we will learn how videos are made ready for every screen. "
    "Each upload is cut into renditions, from the smallest to the largest, and a runner does "
    "the work while the platform keeps serving the previous version. "
)


def spoken_mp4(workdir: Path, seconds: float) -> Path:
    wav, mp4 = workdir / "speech.wav", workdir / "speech.mp4"
    text = PARAGRAPH * max(1, round(seconds / 12))
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(wav), text], check=True)
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=426x240:rate=25",
         "-i", str(wav), "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
         "-c:a", "aac", "-b:a", "96k", "-shortest", str(mp4)],
        check=True,
    )  # fmt: skip
    return mp4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--model", default=None, help="default: the bundled tiny.en")
    args = parser.parse_args()
    model = args.model or whisper.whisper_default_model()
    if not whisper.whisper_available(model):
        sys.exit("faster-whisper or its model is missing: make install")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        media = spoken_mp4(workdir, args.seconds)
        started = time.monotonic()
        whisper.whisper_model_load(model)
        print(f"model {model}: loaded in {time.monotonic() - started:.2f} s")
        factors = []
        for run in range(1, args.runs + 1):
            cpu = time.process_time()
            done = whisper.whisper_transcribe(
                media=media, vtt=workdir / f"{run}.vtt", model=model, language=None
            )
            cpu = time.process_time() - cpu
            factor = done.seconds / done.media_seconds
            factors.append(factor)
            print(
                f"run {run}: {done.seconds:.2f} s wall ({cpu:.2f} s CPU) for "
                f"{done.media_seconds:.2f} s of speech, {done.cues} cues, language "
                f"{done.language}: real-time factor {factor:.3f} "
                f"(CPU {cpu / done.media_seconds:.3f})"
            )
        print(f"median real-time factor: {statistics.median(factors):.3f}")


if __name__ == "__main__":
    main()
